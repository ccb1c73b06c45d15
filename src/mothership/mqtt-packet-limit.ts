/**
 * The largest MQTT packet the embedded broker reads. mqtt-packet buffers a packet whole before it
 * parses it, and the fixed header may announce up to 256 MB, so without a bound one client could make
 * the mothership hold that much per connection. This follows the packet framing of the byte stream
 * (one header byte, the remaining length in 1 to 4 bytes of 7 bits, then that many bytes) and tells
 * as soon as a header announces more than the limit, before the packet's body arrives.
 */

/** Default limit on an MQTT packet's remaining length: a 64 KiB log chunk in base64 fits many times. */
export const MAX_MQTT_PACKET_BYTES = 1024 * 1024;

type State = "header" | "length" | "body";

export class PacketSizeGuard {
  private state: State = "header";
  private lengthBytes = 0;
  private multiplier = 1;
  private length = 0;
  private remaining = 0;

  constructor(readonly maxBytes: number = MAX_MQTT_PACKET_BYTES) {}

  /**
   * Follows `chunk`, the next bytes of the stream. Null while every packet is within the limit;
   * otherwise why the connection must go (a packet too large, or a remaining length longer than 4 bytes).
   */
  feed(chunk: Uint8Array): string | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === "header") {
        i++;
        this.state = "length";
        this.lengthBytes = 0;
        this.multiplier = 1;
        this.length = 0;
        continue;
      }
      if (this.state === "length") {
        const byte = chunk[i++]!;
        this.length += (byte & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (byte & 0x80) {
          if (this.lengthBytes >= 4) return "malformed remaining length";
          continue;
        }
        if (this.length > this.maxBytes) return `packet of ${this.length} bytes, more than the limit of ${this.maxBytes}`;
        this.remaining = this.length;
        this.state = this.remaining === 0 ? "header" : "body";
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - i);
      i += take;
      this.remaining -= take;
      if (this.remaining === 0) this.state = "header";
    }
    return null;
  }
}
