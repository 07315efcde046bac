export { encode } from "./encode.js";
export { decode, isNormalForm, type DecodeOptions } from "./decode.js";
export { parseType, isValidType, offsetWidth, alignUp, type TypeNode } from "./types.js";
export { variant, isVariant, lookup, type Value, type Variant, type Just, type ByteOrder } from "./values.js";
export { bswap16, bswap32, bswap64 } from "./byteswap.js";
export {
  GVariantError,
  GVariantTypeError,
  GVariantDecodeError,
  GVariantNormalFormError,
  GVariantEncodeError,
} from "./errors.js";
