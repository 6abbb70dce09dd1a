import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HELLO } from '@koala/contracts';
@Injectable() class A { hi() { return HELLO; } }
@Injectable() class B { constructor(private readonly a: A) {} }
@Module({ providers: [A, B] }) class M {}
const app = await NestFactory.createApplicationContext(M, { logger: false });
console.log('ok', app.get(B)['a'].hi());
await app.close();
