/**
 * cfn-lint (npm) with a current CloudFormation resource specification. The package bundles the 2019
 * specification, which predates properties such as a launch template's MetadataOptions; the
 * specification that @aws-cdk/cfnspec (npm) carries is merged over it before anything is validated,
 * so resource types and properties are checked against today's CloudFormation.
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

interface Spec {
  ResourceSpecificationVersion: string;
  ResourceTypes: Record<string, unknown>;
  PropertyTypes: Record<string, unknown>;
}
interface LintError {
  message: string;
  resource: string;
}
export interface LintResult {
  templateValid: boolean;
  errors: { info: LintError[]; warn: LintError[]; crit: LintError[] };
}
interface Validator {
  addParameterValue(name: string, value: string | string[]): void;
  validateFile(path: string, options?: { guessParameters?: string[] }): LintResult;
  validateJsonObject(template: unknown, options?: { guessParameters?: string[] }): LintResult;
}

const current = require("@aws-cdk/cfnspec/spec/specification.json") as Spec;

/**
 * A fresh validator with the current specification merged in: the package keeps state between
 * validations that its resetValidator() does not clear, so every validation loads it anew.
 */
function freshValidator(): Validator {
  for (const id of Object.keys(require.cache)) if (id.includes("/node_modules/cfn-lint/")) delete require.cache[id];
  const awsData = require("cfn-lint/lib/awsData") as { awsResources: Spec };
  Object.assign(awsData.awsResources.ResourceTypes, current.ResourceTypes);
  Object.assign(awsData.awsResources.PropertyTypes, current.PropertyTypes);
  return require("cfn-lint/lib/validator") as Validator;
}

export const SPEC_VERSION = current.ResourceSpecificationVersion;

/** Validates a template file, with `parameters` as the values given at deploy time. */
export function lintFile(path: string, parameters: Record<string, string> = {}): LintResult {
  const validator = freshValidator();
  for (const [name, value] of Object.entries(parameters)) validator.addParameterValue(name, value.includes(",") ? value.split(",") : value);
  return validator.validateFile(path);
}

export function lintObject(template: unknown): LintResult {
  const validator = freshValidator();
  return validator.validateJsonObject(template);
}
