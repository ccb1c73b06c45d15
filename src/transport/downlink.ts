/**
 * What both transports do with a message from the mothership: a valid one goes to the agent, a type this
 * launcher does not know (a newer mothership) is ignored, anything else is logged and dropped — never a crash.
 */
import type { Logger } from "../log/logger.ts";
import type { DecodedMessage, DownlinkMessage } from "../protocol/messages.ts";

export function deliverDownlink(parsed: DecodedMessage<DownlinkMessage>, log: Logger, deliver: (message: DownlinkMessage) => void): void {
  if (parsed.kind === "ignored") {
    log.debug("message of an unknown type ignored", { type: parsed.type });
    return;
  }
  if (parsed.kind === "invalid") {
    log.warn("invalid message from the mothership dropped", { error: parsed.error, type: parsed.type, id: parsed.id });
    return;
  }
  deliver(parsed.message);
}
