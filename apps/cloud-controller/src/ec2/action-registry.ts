import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { XmlValue } from '@koala/ec2-query';
import { EC2_ACTION_METADATA, type Ec2Context } from './ec2-action.decorator.js';

export type Ec2Handler = (ctx: Ec2Context) => Promise<Record<string, XmlValue>>;

/** Every `@Ec2Action` handler of the app, found once at start. Duplicate action names stop the start. */
@Injectable()
export class ActionRegistry implements OnModuleInit {
  private readonly handlers = new Map<string, { handler: Ec2Handler; owner: string }>();

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
        const action = this.reflector.get<string | undefined>(EC2_ACTION_METADATA, fn as (...a: unknown[]) => unknown);
        if (!action) continue;
        const owner = `${instance.constructor.name}.${method}`;
        const existing = this.handlers.get(action);
        if (existing) throw new Error(`EC2 action ${action} has two handlers: ${existing.owner} and ${owner}`);
        this.handlers.set(action, { handler: (fn as Ec2Handler).bind(instance), owner });
      }
    }
  }

  /** The handler of `action`, or undefined (→ `InvalidAction`). */
  get(action: string): Ec2Handler | undefined {
    return this.handlers.get(action)?.handler;
  }

  /** Registered action names, sorted. */
  actions(): string[] {
    return [...this.handlers.keys()].sort();
  }
}
