/** Reads a CloudFormation YAML template with its short-form tags (!Ref, !Sub, ...) as the long form. */
import { readFileSync } from "node:fs";
import { parse, type ScalarTag, type CollectionTag } from "yaml";

const FUNCTIONS = ["Ref", "Sub", "If", "Equals", "Not", "GetAtt", "Join", "Base64", "Select", "Split", "And", "Or", "FindInMap", "ImportValue", "GetAZs", "Condition"];

function tags(): Array<ScalarTag | CollectionTag> {
  const long = (name: string) => (name === "Ref" || name === "Condition" ? name : `Fn::${name}`);
  return FUNCTIONS.flatMap((name) => [
    { tag: `!${name}`, resolve: (value: string) => ({ [long(name)]: name === "GetAtt" ? value.split(".") : value }) } as ScalarTag,
    { tag: `!${name}`, collection: "seq", resolve: (value: { toJSON(): unknown }) => ({ [long(name)]: value.toJSON() }) } as unknown as CollectionTag,
  ]);
}

export interface CfnTemplate {
  Parameters: Record<string, { Type: string; Default?: string | number; AllowedValues?: string[]; AllowedPattern?: string }>;
  Conditions: Record<string, unknown>;
  Resources: Record<string, { Type: string; Condition?: string; Properties: Record<string, unknown> }>;
  Outputs: Record<string, unknown>;
}

export function readTemplate(path: string): CfnTemplate {
  return parse(readFileSync(path, "utf8"), { customTags: tags() }) as CfnTemplate;
}
