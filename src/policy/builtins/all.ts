/** Registers every built-in (imported once by the engine). */
import "./operators.ts";
import "./aggregates.ts";
import "./types.ts";
import "./collections.ts";
import "./strings.ts";
import "./sprintf.ts";
import "./units.ts";
import "./misc.ts";
