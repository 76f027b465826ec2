// node-red ships no types (and @types/node-red describes 1.x); the child casts what it uses.
declare module "node-red" {
  const RED: unknown;
  export default RED;
}
