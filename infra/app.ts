/**
 * Builds the CDK app: the stack for the stage chosen in context, with cdk-nag's
 * AwsSolutions checks on every resource. `bin/app.ts` runs it for the CLI; the
 * tests call it with the context they need.
 */
import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readStackConfig } from './config.ts';
import { DigitnetStack } from './stack.ts';

export function buildApp(props: AppProps = {}): { app: App; stack: DigitnetStack } {
  const app = new App(props);
  const config = readStackConfig(app.node);
  const stack = new DigitnetStack(app, `Digitnet-${config.stage}`, {
    config,
    description: `digitnet (${config.stage}): serverless MNIST digit classifier`,
    // Account and region come from the CLI's credentials at deploy time.
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    tags: { project: 'digitnet', stage: config.stage },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
}
