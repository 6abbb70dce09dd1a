import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { loadConfigOrExit, runDaemon } from '@koala/runtime';
import { nodeModule } from './node.module.js';

mkdirSync(loadConfigOrExit().home, { recursive: true });
await runDaemon('node-controller', nodeModule, { zoned: true });
