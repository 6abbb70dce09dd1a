import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { ActionRegistry } from './action-registry.js';
import { Ec2Controller } from './ec2.controller.js';
import { Ec2EndpointService } from './ec2-endpoint.service.js';
import { HttpEdge } from './http-edge.js';
import { RequestRateLimiter } from './rate-limiter.js';

/**
 * The EC2 Query endpoint. Resource modules (key pairs, groups, regions, ...) are imported next to
 * it in the app module; their `@Ec2Action` handlers are discovered by `ActionRegistry` at start.
 * Needs `AuthModule.forRoot(...)` (global) in the app.
 */
@Module({
  imports: [DiscoveryModule],
  controllers: [Ec2Controller],
  providers: [ActionRegistry, Ec2EndpointService, HttpEdge, RequestRateLimiter],
  exports: [ActionRegistry],
})
export class Ec2Module {}
