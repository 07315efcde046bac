export { encode } from "./encode.js";
export { decode, isNormalForm, type DecodeOptions } from "./decode.js";
export { readUntrusted, normalForm } from "./lenient.js";
export { parseType, isValidType, isObjectPath, isSignature, typeDepth, offsetWidth, alignUp, type TypeNode } from "./types.js";
export { variant, isVariant, lookup, type Value, type Variant, type Just, type ByteOrder } from "./values.js";
export { bswap16, bswap32, bswap64 } from "./byteswap.js";
export { print, formatDouble } from "./text-print.js";
export { parseText } from "./text-parse.js";
export {
  GVariantError,
  GVariantTypeError,
  GVariantDecodeError,
  GVariantNormalFormError,
  GVariantEncodeError,
  GVariantParseError,
  type TextRange,
} from "./errors.js";
