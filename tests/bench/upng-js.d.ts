// The part of upng-js the bench tests use (the package ships no types).
declare module 'upng-js' {
  interface Image {
    width: number;
    height: number;
    depth: number;
    ctype: number;
  }
  export function decode(buf: ArrayBuffer): Image;
  export function toRGBA8(img: Image): ArrayBuffer[];
}
