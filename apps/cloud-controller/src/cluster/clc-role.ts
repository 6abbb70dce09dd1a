import { Global, Module, type DynamicModule } from '@nestjs/common';

/**
 * What this CLC process does. With KOALA_API_WORKERS > 1 the EC2 endpoint runs in several
 * worker processes behind one port (node:cluster); exactly one of them, worker 0, also runs the
 * singletons: the JetStream event consumers, the instance reconciler, the volume sweeper, the
 * network-state republisher and the nodes' state requests, the blob collector, the resumption of
 * image fetches, the answer to `koala.v1.status`. A single-process CLC (and every in-process
 * test cloud) does both.
 */
export interface ClcRole {
  /** Index of this worker (0..N-1, kept across restarts); undefined in a single-process CLC. */
  worker?: number;
  /** Runs the singletons. */
  background: boolean;
}

export const CLC_ROLE = Symbol('CLC_ROLE');
export const SINGLE_PROCESS: ClcRole = Object.freeze({ background: true });
/** Environment variable by which the primary tells a worker its index. */
export const WORKER_ENV = 'KOALA_CLC_WORKER';

/** The role given by the primary (`KOALA_CLC_WORKER=<index>`), or a single process's. */
export function roleFromEnv(env: NodeJS.ProcessEnv = process.env): ClcRole {
  const raw = env[WORKER_ENV];
  if (raw === undefined || !/^[0-9]{1,3}$/.test(raw)) return SINGLE_PROCESS;
  const worker = Number(raw);
  return Object.freeze({ worker, background: worker === 0 });
}

/** Whether a provider given this role (none: a single process) runs its background job. */
export function runsBackground(role: ClcRole | undefined): boolean {
  return role?.background ?? true;
}

/** Provides CLC_ROLE to every module. */
@Global()
@Module({})
export class ClcRoleModule {
  static forRoot(role: ClcRole): DynamicModule {
    return { module: ClcRoleModule, providers: [{ provide: CLC_ROLE, useValue: role }], exports: [CLC_ROLE] };
  }
}
