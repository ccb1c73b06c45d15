/**
 * The Terraform module build/terraform/aws-workerpool and its example, read with @cdktf/hcl2json: the
 * documented inputs, the resources (ASG, launch template with IMDSv2 and one hop, optional spot, IAM
 * unless a role is given, the credentials secret) and the boot script as user data, and the example
 * calling the module with inputs it has.
 * What this cannot check: `terraform plan/apply` against AWS (no provider download or account here).
 */
import { describe, expect, test } from "bun:test";
import { parse } from "@cdktf/hcl2json";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";

const terraform = join(import.meta.dir, "../../build/terraform");
const moduleDir = join(terraform, "aws-workerpool");

type Block = Record<string, unknown>;
interface Hcl {
  variable?: Record<string, Block[]>;
  resource?: Record<string, Record<string, Block[]>>;
  module?: Record<string, Block[]>;
  locals?: Block[];
  output?: Record<string, Block[]>;
}

/** Every .tf file of a directory, merged as Terraform reads them. */
async function readModule(dir: string): Promise<Hcl> {
  const merged: Hcl = { variable: {}, resource: {}, module: {}, locals: [], output: {} };
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".tf"))) {
    const hcl = (await parse(f, readFileSync(join(dir, f), "utf8"))) as Hcl;
    Object.assign(merged.variable!, hcl.variable);
    Object.assign(merged.module!, hcl.module);
    Object.assign(merged.output!, hcl.output);
    merged.locals!.push(...(hcl.locals ?? []));
    for (const [type, named] of Object.entries(hcl.resource ?? {})) merged.resource![type] = { ...merged.resource![type], ...named };
  }
  return merged;
}

describe("Terraform aws-workerpool module (cannot check: terraform plan/apply against AWS)", () => {
  test("has the documented inputs, the self-hosted ones included", async () => {
    const m = await readModule(moduleDir);
    expect(Object.keys(m.variable!).sort()).toEqual(
      ["ami_id", "configuration", "ec2_instance_type", "instance_market_options", "instance_role_name", "max_size", "min_size", "secret_name", "secure_env_vars", "security_groups", "selfhosted_configuration", "vpc_subnets", "worker_pool_id"].sort(),
    );
    expect(m.variable!.secure_env_vars![0]!.sensitive).toBe(true);
    const selfhosted = String(m.variable!.selfhosted_configuration![0]!.type);
    for (const key of ["s3_uri", "downloads_url", "release_public_key", "http_proxy_config", "https_proxy_config", "no_proxy_config", "additional_root_cas_secret_name", "custom_user_data_secret_name", "run_launcher_as_spacelift_user", "power_off_on_error"]) {
      expect(selfhosted, key).toContain(`${key} `);
    }
    expect(String(m.variable!.instance_market_options![0]!.type)).toContain("market_type");
  });

  test("an Auto Scaling group, a launch template with IMDSv2 and one hop, optional spot, IAM unless a role is given", async () => {
    const m = await readModule(moduleDir);
    const r = m.resource!;
    expect(Object.keys(r).sort()).toEqual(
      ["aws_autoscaling_group", "aws_iam_instance_profile", "aws_iam_role", "aws_iam_role_policy", "aws_iam_role_policy_attachment", "aws_launch_template", "aws_secretsmanager_secret", "aws_secretsmanager_secret_version"].sort(),
    );
    const lt = r.aws_launch_template!.worker![0]!;
    expect((lt.metadata_options as Block[])[0]).toEqual({ http_endpoint: "enabled", http_tokens: "required", http_put_response_hop_limit: 1, instance_metadata_tags: "enabled" });
    expect(lt.user_data).toBe("${base64encode(local.user_data)}");
    const spot = (lt.dynamic as Record<string, Block[]>).instance_market_options![0]!;
    expect(spot.for_each).toBe("${var.instance_market_options == null ? [] : [var.instance_market_options]}");
    expect(r.aws_iam_role!.worker![0]!.count).toBe('${var.instance_role_name == "" ? 1 : 0}');
    const locals = Object.assign({}, ...m.locals!) as Record<string, unknown>;
    expect(locals.managed_policies).toEqual(["AutoScalingReadOnlyAccess", "CloudWatchAgentServerPolicy", "AmazonSSMManagedInstanceCore"]);
    expect(r.aws_autoscaling_group!.workers![0]!).toMatchObject({ min_size: "${var.min_size}", max_size: "${var.max_size}", vpc_zone_identifier: "${var.vpc_subnets}" });
  });

  test("the user data is every boot setting, then the boot script file, which exists", async () => {
    const m = await readModule(moduleDir);
    const locals = Object.assign({}, ...m.locals!) as Record<string, unknown>;
    const userData = String(locals.user_data);
    const path = /file\("\$\{path\.module\}\/([^"]+)"\)/.exec(userData)?.[1];
    expect(path).toBe("../../user-data/spacelift-boot.sh");
    expect(existsSync(resolve(moduleDir, path!))).toBe(true);
    expect(userData).toContain(`replace(v, "'", "'\\\\''")`);
    const settings = Object.keys(locals.settings as Record<string, string>);
    const script = readFileSync(resolve(moduleDir, path!), "utf8");
    for (const name of settings) expect(script, name).toContain(`"\${${name}:=`);
  });

  test("the example calls the module by its path with inputs the module has", async () => {
    const example = await readModule(join(terraform, "examples/self-hosted"));
    const call = example.module!.my_workerpool![0]!;
    expect(existsSync(resolve(terraform, "examples/self-hosted", String(call.source)))).toBe(true);
    const inputs = Object.keys((await readModule(moduleDir)).variable!);
    for (const name of Object.keys(call).filter((k) => k !== "source")) expect(inputs, name).toContain(name);
    expect(call.selfhosted_configuration).toEqual({ s3_uri: "s3://spacelift-binaries-123ab/spacelift-launcher" });
    expect(Object.keys(call.secure_env_vars as Block).sort()).toEqual(["SPACELIFT_POOL_PRIVATE_KEY", "SPACELIFT_TOKEN"]);
  });
});
