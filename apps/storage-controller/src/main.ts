import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { loadConfigOrExit, runDaemon } from '@koala/runtime';
import { storageModule } from './storage.module.js';

mkdirSync(loadConfigOrExit().home, { recursive: true });
await runDaemon('storage-controller', storageModule, { zoned: true });
