import 'reflect-metadata';
import { runDaemon } from '@koala/runtime';
import { clusterModule } from './cluster.module.js';

await runDaemon('cluster-controller', clusterModule, { zoned: true });
