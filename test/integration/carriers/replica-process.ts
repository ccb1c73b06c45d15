/**
 * One replica's external broker client in a process of its own, so a test can SIGKILL it: `bun
 * replica-process.ts URL DATA_DIR REPLICA`. Prints `connected` once connected, then each uplink's
 * payload on a line of its own.
 */
import "reflect-metadata";
import { join } from "node:path";
import { silentLogger } from "../../../src/log/logger.ts";
import { loadOrCreateBrokerClientIdentity } from "../../../src/mothership/broker-identity.ts";
import { connectExternalBroker } from "../../../src/mothership/external-broker.ts";
import { loadOrCreateCa } from "../../../src/pki/ca.ts";

const [url, dataDir, replica] = process.argv.slice(2) as [string, string, string];
const ca = await loadOrCreateCa(join(dataDir, "ca"));
const broker = await connectExternalBroker({
  url,
  namespace: "spacelift",
  replica,
  identity: await loadOrCreateBrokerClientIdentity(dataDir, ca),
  caPems: [ca.certificatePem],
  onUplink: (_pool, _worker, payload) => process.stdout.write(payload.toString("utf8") + "\n"),
  logger: silentLogger,
});
if (!broker.connected()) process.exit(1);
process.stdout.write("connected\n");
