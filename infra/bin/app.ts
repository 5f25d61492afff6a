#!/usr/bin/env node
/** The CDK CLI's entry (cdk.json "app"): `npx cdk synth -c stage=prod`. */
import { buildApp } from '../app.ts';
import { StackConfigError } from '../config.ts';

try {
  buildApp();
} catch (error) {
  if (!(error instanceof StackConfigError)) throw error;
  // A mistyped -c value is the user's to fix: say what is wrong, without a stack trace.
  process.stderr.write(`digitnet: ${error.message}\n`);
  process.exitCode = 1;
}
