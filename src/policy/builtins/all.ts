/** Registers every built-in (imported once by the engine). */
import "./operators.ts";
import "./aggregates.ts";
import "./types.ts";
import "./collections.ts";
import "./strings.ts";
import "./sprintf.ts";
import "./units.ts";
import "./misc.ts";
import "./crypto.ts";
import "./net.ts";
import "./jwt.ts";
import "./time.ts";
import "./regex.ts";
import "./encoding.ts";
import "./semver.ts";
import "./bits.ts";
import "./yaml.ts";
