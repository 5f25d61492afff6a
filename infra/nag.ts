/**
 * cdk-nag (v3) findings are acknowledged with CDK's own `Validations`, one
 * finding id at a time. IAM findings name the resource by its logical id, so
 * these helpers build that id from the construct instead of hard-coding a hash.
 */
import { Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** The `Resource::<LogicalId.Arn>…` form cdk-nag uses for a resource's ARN in a policy. */
export function arnFinding(resource: IConstruct, suffix = ''): string {
  const cfn = resource.node.defaultChild as CfnElement;
  return `Resource::<${Stack.of(resource).resolve(cfn.logicalId)}.Arn>${suffix}`;
}

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}
