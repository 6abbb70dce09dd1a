import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { CompiledShapes, type QueryApi, type XmlValue } from '@koala/ec2-query';
import { EC2_ACTION_METADATA, type Ec2ActionSpec, type Ec2Context } from './ec2-action.decorator.js';

export type Ec2Handler = (ctx: Ec2Context) => Promise<Record<string, XmlValue>>;

/** One registered action: its handler and its declared parameter shapes, compiled. */
export interface RegisteredAction {
  handler: Ec2Handler;
  /** Declared `params` and `ignored` together: the names a request may carry. */
  shapes: CompiledShapes;
  /** The `ignored` shapes (accepted, not honoured). */
  ignored: readonly string[];
  /** STS/IAM actions: the dialect their answers and errors are rendered in. */
  dialect?: QueryApi;
  owner: string;
}

/** Every `@Ec2Action` handler of the app, found once at start. Duplicate action names stop the start. */
@Injectable()
export class ActionRegistry implements OnModuleInit {
  private readonly handlers = new Map<string, RegisteredAction>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as Record<string, unknown> | undefined;
      if (!instance || typeof instance !== 'object' || !wrapper.isDependencyTreeStatic()) continue;
      const proto = Object.getPrototypeOf(instance) as object | null;
      if (!proto) continue;
      for (const method of this.scanner.getAllMethodNames(proto)) {
        const fn = instance[method];
        if (typeof fn !== 'function') continue;
        const spec = this.reflector.get<Ec2ActionSpec | undefined>(EC2_ACTION_METADATA, fn as (...a: unknown[]) => unknown);
        if (!spec) continue;
        const action = spec.name;
        const owner = `${instance.constructor.name}.${method}`;
        const existing = this.handlers.get(action);
        if (existing) throw new Error(`EC2 action ${action} has two handlers: ${existing.owner} and ${owner}`);
        this.handlers.set(action, {
          handler: (fn as Ec2Handler).bind(instance),
          shapes: new CompiledShapes([...spec.params, ...(spec.ignored ?? [])]),
          ignored: spec.ignored ?? [],
          ...(spec.dialect ? { dialect: spec.dialect } : {}),
          owner,
        });
      }
    }
  }

  /** The handler of `action`, or undefined (→ `InvalidAction`). */
  get(action: string): Ec2Handler | undefined {
    return this.handlers.get(action)?.handler;
  }

  /** `action`'s handler and parameter shapes, or undefined. */
  entry(action: string): RegisteredAction | undefined {
    return this.handlers.get(action);
  }

  /** Registered action names, sorted. */
  actions(): string[] {
    return [...this.handlers.keys()].sort();
  }
}
