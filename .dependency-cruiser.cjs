// The dependency direction between components (DESIGN.md):
//   api <- galley <- {pilot, mixer, citadel};  proxy, agent -> xds, common only;
//   cli and runtime on top; nothing imports cli.
const component = (name) => `^src/${name}/`;
const rule = (name, from, to, comment) => ({ name, severity: 'error', comment, from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    rule('api-is-the-foundation', component('api'), '^src/(galley|pilot|mixer|citadel|proxy|agent|runtime|cli|xds)/', 'src/api depends on common only'),
    rule('common-depends-on-nothing', component('common'), '^src/(?!common/)', 'src/common is the bottom layer'),
    rule('xds-is-wire-only', component('xds'), '^src/(api|galley|pilot|mixer|citadel|proxy|agent|runtime|cli)/', 'src/xds holds protos and wire helpers only'),
    rule('galley-below-control-plane', component('galley'), '^src/(pilot|mixer|citadel|proxy|agent|runtime|cli)/', 'galley feeds pilot, mixer and citadel, never the reverse'),
    rule('control-plane-modules-are-peers', '^src/(pilot|mixer|citadel)/', '^src/(proxy|agent|runtime|cli)/', 'control-plane modules do not reach into the data plane or the CLI'),
    rule('data-plane-meets-control-plane-on-the-wire', '^src/(proxy|agent)/', '^src/(api|galley|pilot|mixer|citadel|runtime|cli)/', 'proxy and agent depend on xds and common only'),
    rule('runtime-below-cli', component('runtime'), component('cli'), 'the CLI sits on top'),
    { name: 'no-circular', severity: 'error', comment: 'modules must not depend on each other in a cycle', from: {}, to: { circular: true } },
    { name: 'not-to-unresolvable', severity: 'error', from: {}, to: { couldNotResolve: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.json'] },
  },
};
