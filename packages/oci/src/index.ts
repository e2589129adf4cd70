export * from './reference.ts';
export * from './errors.ts';
export * from './media-types.ts';
export * from './registry-client.ts';
export * from './blob-store.ts';
export * from './pull.ts';
export * from './unpack.ts';
export * from './image-store.ts';
