export * from './kinds.ts';
export { ObjectMeta, dnsLabel, dnsSubdomain, labels, annotations } from './meta.ts';
export { PodSpec, PodTemplate, Container, EnvVar, ResourceList, VolumeClaimTemplate } from './podspec.ts';
export { parseQuantity, bytes, cpuMillis, isQuantity, QuantityError } from './quantity.ts';
export { validateObject, parseManifests, formatIssues, issuesToErrors, pathOf, type FieldError, type Validated, type ManifestResult } from './validate.ts';
export { convert, versionOf, ANNOTATION_CONVERTED_TEMPLATE, ANNOTATION_CONVERTED_WARMPOOL } from './convert.ts';
export * from './labels.ts';
export * from './conditions.ts';
