export * from "./tree.js";
export * from "./fixtures.js";
export * from "./manifest.js";
export * from "./cpio.js";
export {
  IMAGE_NAMES,
  buildImage,
  buildInitramfs,
  cacheDir,
  imageRoots,
  kernelVersions,
  loadImages,
  lockPath,
  makeOstreeReady,
  packageDir,
  pinImage,
  readLock,
  ImageBuildError,
  type ImageSpec,
  type ImagesFile,
} from "./images.js";
export { parseLock, formatLock, debFileName, type Pin, AptError } from "./apt.js";
