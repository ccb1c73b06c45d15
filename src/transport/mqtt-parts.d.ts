/**
 * Types for the two parts of MQTT.js the MQTT transport loads (src/transport/mqtt-transport.ts): the client and
 * the TLS stream builder. MQTT.js maps every subpath's types to its entry point, so they are named here, with
 * MQTT.js's own types.
 */
declare module "mqtt/lib/client" {
  import type { IClientOptions, MqttClient } from "mqtt";
  import type { Duplex } from "node:stream";
  /** Makes the connection for each (re)connect of the client. */
  export type StreamBuilder = (client: MqttClient) => Duplex;
  const MqttClientClass: new (streamBuilder: StreamBuilder, options: IClientOptions) => MqttClient;
  export default MqttClientClass;
}

declare module "mqtt/lib/connect/tls" {
  import type { IClientOptions, MqttClient } from "mqtt";
  import type { Duplex } from "node:stream";
  const buildStream: (client: MqttClient, options: IClientOptions) => Duplex;
  export default buildStream;
}
