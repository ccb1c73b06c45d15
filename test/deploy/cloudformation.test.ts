/**
 * build/cloudformation/workerpool.yaml: valid by cfn-lint against the current CloudFormation
 * specification, the documented parameters with their types and defaults, IMDSv2 with one hop, the
 * role only when none is given, the boot script verbatim as user data (under EC2's 16 KB), and the
 * `aws cloudformation deploy` commands of docs/deploy/cloudformation.md valid against it unchanged.
 * What this cannot check: a real deployment (IAM, EC2 and Auto Scaling accepting it in an account).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { lintFile, lintObject, SPEC_VERSION } from "./cfn-lint.ts";
import { readTemplate } from "./cfn-template.ts";

const root = join(import.meta.dir, "../..");
const TEMPLATE = join(root, "build/cloudformation/workerpool.yaml");
const template = readTemplate(TEMPLATE);
const bootScript = readFileSync(join(root, "build/user-data/spacelift-boot.sh"), "utf8");

const DOCUMENTED: Record<string, { type: string; default?: string }> = {
  PseudoRandomSuffix: { type: "String" },
  BinariesBucket: { type: "String" },
  SecretName: { type: "String" },
  SecurityGroups: { type: "List<AWS::EC2::SecurityGroup::Id>" },
  Subnets: { type: "List<AWS::EC2::Subnet::Id>" },
  ImageId: { type: "AWS::EC2::Image::Id" },
  InstanceRoleName: { type: "String", default: "" },
  CustomUserDataSecretName: { type: "String", default: "" },
  HttpProxyConfig: { type: "String", default: "" },
  HttpsProxyConfig: { type: "String", default: "" },
  NoProxyConfig: { type: "String", default: "" },
  AdditionalRootCAsSecretName: { type: "String", default: "" },
  RunLauncherAsSpaceliftUser: { type: "String", default: "true" },
  PowerOffOnError: { type: "String", default: "true" },
  MinSize: { type: "Number", default: "1" },
  MaxSize: { type: "Number", default: "2" },
  InstanceType: { type: "String", default: "t3.medium" },
};

/** Each `aws cloudformation deploy` command of the operator docs: its template path and parameter overrides. */
function documentedDeployCommands(): Array<{ templateFile: string; parameters: Record<string, string> }> {
  const doc = readFileSync(join(root, "docs/deploy/cloudformation.md"), "utf8");
  return [...doc.matchAll(/```sh\n(aws cloudformation deploy[\s\S]*?)```/g)].map(([, command]) => ({
    templateFile: /--template-file "([^"]+)"/.exec(command!)![1]!,
    parameters: Object.fromEntries([...command!.matchAll(/^\s+([A-Za-z]+)="([^"]*)"/gm)].map(([, k, v]) => [k!, v!])),
  }));
}

describe("CloudFormation workerpool.yaml (cannot check: a real deployment in an AWS account)", () => {
  test(`cfn-lint finds nothing, with CloudFormation specification ${SPEC_VERSION}`, () => {
    const result = lintFile(TEMPLATE);
    expect(result.errors, JSON.stringify(result.errors)).toEqual({ info: [], warn: [], crit: [] });
    expect(result.templateValid).toBe(true);
    // The linter is live: a property CloudFormation does not have is reported.
    const broken = structuredClone(template) as unknown as { Resources: { LaunchTemplate: { Properties: { LaunchTemplateData: { MetadataOptions: Record<string, unknown> } } } } };
    broken.Resources.LaunchTemplate.Properties.LaunchTemplateData.MetadataOptions.HttpTokenz = "required";
    expect(lintObject(broken).templateValid).toBe(false);
  });

  test("exactly the documented parameters, with their types and defaults", () => {
    expect(Object.keys(template.Parameters).sort()).toEqual(Object.keys(DOCUMENTED).sort());
    for (const [name, want] of Object.entries(DOCUMENTED)) {
      const p = template.Parameters[name]!;
      expect(p.Type, name).toBe(want.type);
      expect(p.Default === undefined ? undefined : String(p.Default), name).toBe(want.default);
    }
    expect(template.Parameters.PowerOffOnError!.AllowedValues).toEqual(["true", "false"]);
    expect(template.Parameters.RunLauncherAsSpaceliftUser!.AllowedValues).toEqual(["true", "false"]);
  });

  test("the launch template requires IMDSv2 with a hop limit of 1 and exposes instance tags", () => {
    const lt = template.Resources.LaunchTemplate!;
    expect(lt.Type).toBe("AWS::EC2::LaunchTemplate");
    expect((lt.Properties.LaunchTemplateData as { MetadataOptions: unknown }).MetadataOptions).toEqual({
      HttpEndpoint: "enabled",
      HttpTokens: "required",
      HttpPutResponseHopLimit: 1,
      InstanceMetadataTags: "enabled",
    });
    const asg = template.Resources.AutoScalingGroup!;
    expect(asg.Type).toBe("AWS::AutoScaling::AutoScalingGroup");
    expect(asg.Properties).toMatchObject({ MinSize: { Ref: "MinSize" }, MaxSize: { Ref: "MaxSize" }, VPCZoneIdentifier: { Ref: "Subnets" } });
  });

  test("the role is made only without InstanceRoleName, with the three managed policies", () => {
    expect(template.Conditions.CreateInstanceRole).toEqual({ "Fn::Equals": [{ Ref: "InstanceRoleName" }, ""] });
    const role = template.Resources.InstanceRole!;
    expect(role.Condition).toBe("CreateInstanceRole");
    const policies = (role.Properties.ManagedPolicyArns as Array<{ "Fn::Sub": string }>).map((p) => p["Fn::Sub"].split("/").pop());
    expect(policies).toEqual(["AutoScalingReadOnlyAccess", "CloudWatchAgentServerPolicy", "AmazonSSMManagedInstanceCore"]);
    expect(template.Resources.InstanceProfile!.Properties.Roles).toEqual([{ "Fn::If": ["CreateInstanceRole", { Ref: "InstanceRole" }, { Ref: "InstanceRoleName" }] }]);
  });

  test("the user data is every setting, then the boot script verbatim, under EC2's 16 KB", () => {
    const data = template.Resources.LaunchTemplate!.Properties.LaunchTemplateData as { UserData: { "Fn::Base64": { "Fn::Join": [string, unknown[]] } } };
    const parts = data.UserData["Fn::Base64"]["Fn::Join"][1];
    expect(parts.at(-1)).toBe(bootScript);
    const settings = parts.slice(1, -1).map((p) => (p as { "Fn::Sub": string })["Fn::Sub"]);
    const given = settings.map((s) => /^([A-Z_]+)='\$\{(\w+)\}'\n$/.exec(s)!.slice(1, 3));
    expect(Object.fromEntries(given)).toEqual({
      BINARIES_BUCKET: "BinariesBucket",
      SECRET_NAME: "SecretName",
      CUSTOM_USER_DATA_SECRET_NAME: "CustomUserDataSecretName",
      ADDITIONAL_ROOT_CAS_SECRET_NAME: "AdditionalRootCAsSecretName",
      HTTP_PROXY_CONFIG: "HttpProxyConfig",
      HTTPS_PROXY_CONFIG: "HttpsProxyConfig",
      NO_PROXY_CONFIG: "NoProxyConfig",
      RUN_LAUNCHER_AS_SPACELIFT_USER: "RunLauncherAsSpaceliftUser",
      POWER_OFF_ON_ERROR: "PowerOffOnError",
    });
    // Each value sits in single quotes: a parameter may not hold one.
    for (const [, param] of given) {
      const p = template.Parameters[param!]!;
      if (p.AllowedValues) expect(p.AllowedValues.join(""), param).not.toContain("'");
      else expect(p.AllowedPattern, param).toContain("[^'");
    }
    const rendered = 200 * settings.length + bootScript.length;
    expect(rendered).toBeLessThan(16 * 1024);
  });

  test("the docs' aws cloudformation deploy commands name only its parameters and are valid against it", () => {
    const commands = documentedDeployCommands();
    expect(commands.length).toBeGreaterThanOrEqual(2);
    for (const { templateFile, parameters } of commands) {
      expect(templateFile).toBe("cloudformation/workerpool.yaml");
      for (const name of Object.keys(parameters)) expect(Object.keys(template.Parameters), name).toContain(name);
      const required = Object.entries(template.Parameters).filter(([, p]) => p.Default === undefined).map(([n]) => n);
      for (const name of required) expect(Object.keys(parameters), name).toContain(name);
      const result = lintFile(join(root, "build", templateFile), parameters);
      expect(result.errors.crit, JSON.stringify(result.errors.crit)).toEqual([]);
    }
    // A value outside a parameter's allowed values is caught the same way.
    expect(lintFile(TEMPLATE, { ...commands[0]!.parameters, PowerOffOnError: "maybe" }).errors.crit.length).toBeGreaterThan(0);
  });
});
