// Jest setup (every project): a built CLC started by a test (directly or through `koala up`)
// runs one process unless the test asks for more (KOALA_API_WORKERS defaults to the core count).
process.env.KOALA_API_WORKERS ??= '1';
export {};
