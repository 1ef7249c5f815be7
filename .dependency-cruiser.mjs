// dependency-cruiser (`npm run deps`, part of `npm test`): zero import cycles among the parts'
// sources. TypeScript 7 has no JavaScript compiler API yet, so dependency-cruiser parses the
// .ts files with swc (pinned beside it); swc keeps type-only imports, so a cycle made only of
// `import type` counts too. The layering and the index.ts rule are test/boundaries.test.ts.
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'An import cycle: split the shared piece out, or pass a small interface down (doc/ARCHITECTURE.md)',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    parser: 'swc',
    // The parts (a part not created yet is simply absent); tests and benches are not parts.
    includeOnly: '^(common|formats|platform|keys|layers|bootchain|update|control|agent|imagebuild)/',
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|test|bench|fixtures|rootfs)/' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs'] },
    progress: { type: 'none' },
  },
};
