import type { Value } from "./values.js";

/**
 * The value of a fixed-size basic type at `start`; the caller has checked
 * that `node.fixedSize` bytes are there. Booleans read as g_variant_get_boolean()
 * does: any non-zero byte is true (strict decoding rejects bytes > 1 separately).
 */
export function readBasic(dv: DataView, code: string, start: number, le: boolean): Value {
  switch (code) {
    case "b":
      return dv.getUint8(start) !== 0;
    case "y":
      return dv.getUint8(start);
    case "n":
      return dv.getInt16(start, le);
    case "q":
      return dv.getUint16(start, le);
    case "i":
    case "h":
      return dv.getInt32(start, le);
    case "u":
      return dv.getUint32(start, le);
    case "x":
      return dv.getBigInt64(start, le);
    case "t":
      return dv.getBigUint64(start, le);
    case "d":
      return dv.getFloat64(start, le);
  }
  throw new Error(`not a fixed-size basic type: '${code}'`);
}
