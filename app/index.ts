// The module an application stack imports: `import * as consulApp from "<this repo>/app";`
export * from "./consul-app";
export * from "./vm-app";
