#!/usr/bin/env node
/** The CDK CLI's entry (cdk.json "app"): `npx cdk synth -c stage=prod`. */
import { buildApp } from '../app.ts';

buildApp();
