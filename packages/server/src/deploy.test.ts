// Checks deploy/ and k8s/ against the Kubernetes schemas, the CLI they run and each other; runs their Redis scripts on real redis-server.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { Deployment, StatefulSet, type IDeployment, type IStatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job, type IJob } from 'kubernetes-models/batch/v1';
import { Ingress, NetworkPolicy, type IIngress, type INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service, ServiceAccount, type IContainer, type IPodSpec, type ISecret, type IService } from 'kubernetes-models/v1';
import { ServiceMonitor, type IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { parseRedisAddress } from '@switchboard/engine';
import { freePort, stopRedisProcess, waitUntilSettled } from '@switchboard/testkit';
import { loadConfig, roles, usage, type Config, type Role } from './config';
import { parseConfigFile } from './config-file';

const root = path.resolve(__dirname, '..', '..', '..');
const deployDir = path.join(root, 'deploy');
const read = (...parts: string[]): string => readFileSync(path.join(root, ...parts), 'utf8');

/** The environment variables the CLI reads, straight from its --help table. */
const cliEnvNames = new Set(usage().match(/SWITCHBOARD_[A-Z_]+/g) ?? []);
/** Read by Node itself, not by the CLI: a compose service may set it (the worker replaces the image's). */
const NODE_ENV_NAMES = new Set(['NODE_OPTIONS']);
/** The CLI's defaults, as a gateway started with no settings sees them. */
const cliDefaults = runConfig('gateway', { SWITCHBOARD_REDIS_URL: 'redis://127.0.0.1:1' });
/** The server sends a ping every 25 s (PROTOCOL.md); a proxy read timeout must outlast the gap between two. */
const PING_INTERVAL_SECONDS = 25;
/** The V8 young generation size the project ships (docs/benchmarks.md: memory per idle connection). */
const SEMI_SPACE_FLAG = '--max-semi-space-size=2';

function runConfig(role: Role, env: Record<string, string>): Config {
  const loaded = loadConfig([role], env);
  if (loaded.action !== 'run') throw new Error(`expected a runnable config, got ${loaded.action}`);
  return loaded.config;
}

// ---- Kubernetes: rendering the kustomizations ------------------------------------------------------------------

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

interface LoadedManifest {
  /** The repository file the object comes from. */
  file: string;
  index: number;
  manifest: Manifest;
}

interface Kustomization {
  apiVersion: string;
  kind: 'Kustomization' | 'Component';
  resources?: string[];
  components?: string[];
  configMapGenerator?: { name: string; files: string[]; options?: { disableNameSuffixHash?: boolean } }[];
  patches?: { patch?: string; path?: string; target?: unknown }[];
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

/** What kustomize produced, as far as this renderer does it: objects, and where each generated ConfigMap's keys come from. */
interface Rendered {
  manifests: LoadedManifest[];
  /** Generated ConfigMap name → key → repository file; `hashed` when kustomize appends a content hash to the name. */
  generated: Map<string, { files: Map<string, string>; hashed: boolean }>;
}

const k8sRoot = path.join(root, 'k8s');
const relative = (file: string): string => path.relative(root, file);

/** The fields this renderer implements; a kustomization using any other is refused rather than rendered wrongly. */
const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'configMapGenerator', 'patches', 'labels', 'images']);
/** List fields a strategic merge patch merges by `name`; other lists in a patch are refused. */
const MERGED_BY_NAME = new Set(['containers', 'initContainers', 'env', 'volumes']);

function readKustomization(dir: string): Kustomization {
  const k = parseYaml(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  const unsupported = Object.keys(k).filter((key) => !KUSTOMIZATION_FIELDS.has(key));
  if (unsupported.length > 0) throw new Error(`${relative(dir)}/kustomization.yaml: this test does not render ${unsupported.join(', ')}`);
  for (const generator of k.configMapGenerator ?? []) {
    const options = Object.keys(generator.options ?? {}).filter((o) => o !== 'disableNameSuffixHash');
    if (options.length > 0) throw new Error(`${relative(dir)}: configMapGenerator option ${options.join(', ')} is not rendered here`);
  }
  return k;
}

function parseManifests(file: string): LoadedManifest[] {
  const loaded: LoadedManifest[] = [];
  parseAllDocuments(readFileSync(file, 'utf8')).forEach((doc, index) => {
    if (doc.errors.length > 0) throw new Error(`${relative(file)}: ${doc.errors[0].message}`);
    const manifest = doc.toJS() as Manifest | null;
    if (manifest) loaded.push({ file: relative(file), index, manifest });
  });
  return loaded;
}

const sameObject = (a: Manifest, b: Manifest): boolean => a.apiVersion === b.apiVersion && a.kind === b.kind && a.metadata.name === b.metadata.name;

function addManifest(acc: Rendered, loaded: LoadedManifest): void {
  const clash = acc.manifests.find((m) => sameObject(m.manifest, loaded.manifest));
  if (clash) throw new Error(`${loaded.file}: ${loaded.manifest.kind}/${loaded.manifest.metadata.name} is already defined in ${clash.file}`);
  acc.manifests.push(loaded);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Strategic merge as kustomize does it for what the components patch: maps merge, null deletes, named lists merge by name. */
function strategicMerge(target: unknown, patch: unknown, at: string): unknown {
  if (!isObject(target) || !isObject(patch)) return patch;
  const out: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) throw new Error(`${at}: directive ${key} is not rendered here`);
    if (value === null) delete out[key];
    else if (Array.isArray(value) && Array.isArray(out[key])) {
      if (!MERGED_BY_NAME.has(key)) throw new Error(`${at}.${key}: only ${[...MERGED_BY_NAME].join(', ')} lists are merged here`);
      const merged = [...(out[key] as Record<string, unknown>[])];
      const added: Record<string, unknown>[] = [];
      for (const item of value as Record<string, unknown>[]) {
        const i = merged.findIndex((m) => m.name === item.name);
        if (i < 0) added.push(item);
        else merged[i] = strategicMerge(merged[i], item, `${at}.${key}[${String(item.name)}]`) as Record<string, unknown>;
      }
      // kustomize puts the items a patch adds before the existing ones.
      out[key] = [...added, ...merged];
    } else out[key] = key in out ? strategicMerge(out[key], value, `${at}.${key}`) : value;
  }
  return out;
}

function podSpecOf(manifest: Manifest): IPodSpec | undefined {
  if (!['Deployment', 'StatefulSet', 'Job'].includes(manifest.kind)) return undefined;
  return (manifest as unknown as { spec?: { template?: { spec?: IPodSpec } } }).spec?.template?.spec;
}

/** Adds the kustomization (or component) in `dir` to `acc`, in kustomize's order: resources, components, generators, transformers. */
function accumulate(acc: Rendered, dir: string, kind: Kustomization['kind']): void {
  const k = readKustomization(dir);
  if (k.kind !== kind) throw new Error(`${relative(dir)}: expected a ${kind}, found ${k.kind}`);
  for (const entry of k.resources ?? []) {
    const target = path.resolve(dir, entry);
    if (statSync(target).isDirectory()) {
      // A kustomization in resources is built on its own; its transformers never see the objects around it.
      const sub = render(target);
      sub.manifests.forEach((m) => addManifest(acc, m));
      sub.generated.forEach((g, name) => acc.generated.set(name, g));
    } else parseManifests(target).forEach((m) => addManifest(acc, m));
  }
  for (const component of k.components ?? []) accumulate(acc, path.resolve(dir, component), 'Component');
  for (const generator of k.configMapGenerator ?? []) {
    const files = new Map(generator.files.map((f) => [path.basename(f), path.resolve(dir, f)]));
    const data = Object.fromEntries([...files].map(([key, file]) => [key, readFileSync(file, 'utf8')]));
    const manifest: Manifest = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: generator.name }, data };
    addManifest(acc, { file: relative(path.join(dir, 'kustomization.yaml')), index: 0, manifest });
    acc.generated.set(generator.name, { files, hashed: generator.options?.disableNameSuffixHash !== true });
  }
  for (const { patch, path: patchFile, target } of k.patches ?? []) {
    if (target !== undefined) throw new Error(`${relative(dir)}: patches with a target are not rendered here`);
    const text = patch ?? readFileSync(path.resolve(dir, patchFile ?? ''), 'utf8');
    for (const doc of parseAllDocuments(text)) {
      const p = doc.toJS() as Manifest & { $patch?: string };
      const i = acc.manifests.findIndex((m) => sameObject(m.manifest, p));
      if (i < 0) throw new Error(`${relative(dir)}: a patch names ${p.kind}/${p.metadata.name}, which is not there`);
      if (p.$patch === 'delete') acc.manifests.splice(i, 1);
      else acc.manifests[i] = { ...acc.manifests[i], manifest: strategicMerge(acc.manifests[i].manifest, p, `${p.kind}/${p.metadata.name}`) as Manifest };
    }
  }
  for (const label of k.labels ?? []) {
    if (label.includeSelectors || label.includeTemplates) throw new Error(`${relative(dir)}: labels into selectors or templates are not rendered here`);
    for (const m of acc.manifests) m.manifest = { ...m.manifest, metadata: { ...m.manifest.metadata, labels: { ...m.manifest.metadata.labels, ...label.pairs } } };
  }
  for (const image of k.images ?? []) {
    for (const m of acc.manifests) {
      const spec = podSpecOf(m.manifest);
      for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
        if (c.image === image.name) c.image = `${image.newName ?? image.name}${image.newTag ? `:${image.newTag}` : ''}`;
      }
    }
  }
}

function render(dir: string): Rendered {
  const acc: Rendered = { manifests: [], generated: new Map() };
  accumulate(acc, dir, 'Kustomization');
  return acc;
}

/** The base and every overlay: what deploy.test.ts checks. */
const variants = ['base', ...readdirSync(path.join(k8sRoot, 'overlays')).sort().map((d) => `overlays/${d}`)];
const components = readdirSync(path.join(k8sRoot, 'components')).sort().map((d) => `components/${d}`);

// ---- Kubernetes: reading a rendered variant ---------------------------------------------------------------------

/** A Deployment, StatefulSet or Job: its pods' labels and spec. */
interface Workload {
  kind: string;
  name: string;
  labels: Record<string, string>;
  spec: IPodSpec;
  manifest: Manifest;
}

class Variant {
  readonly manifests: LoadedManifest[];
  readonly generated: Rendered['generated'];
  readonly workloads: Workload[];

  constructor(readonly name: string) {
    const rendered = render(path.join(k8sRoot, name));
    this.manifests = rendered.manifests;
    this.generated = rendered.generated;
    this.workloads = this.manifests.flatMap(({ manifest }) => {
      const spec = podSpecOf(manifest);
      if (!spec) return [];
      const labels = ((manifest as unknown as IDeployment).spec?.template.metadata?.labels ?? {}) as Record<string, string>;
      return [{ kind: manifest.kind, name: manifest.metadata.name, labels, spec, manifest }];
    });
  }

  find<T>(kind: string, name: string): T {
    const found = this.manifests.find((m) => m.manifest.kind === kind && m.manifest.metadata.name === name);
    if (!found) throw new Error(`no ${kind} ${name} in ${this.name}`);
    return found.manifest as unknown as T;
  }

  all<T>(kind: string): T[] {
    return this.manifests.filter((m) => m.manifest.kind === kind).map((m) => m.manifest as unknown as T);
  }

  workload(kind: string, name: string): Workload {
    const found = this.workloads.find((w) => w.kind === kind && w.name === name);
    if (!found) throw new Error(`no ${kind} ${name} in ${this.name}`);
    return found;
  }

  /** The workloads whose pods carry every label of `selector`. */
  selectedBy(selector: ILabelSelector | Record<string, string> | undefined): Workload[] {
    return this.workloads.filter((w) => matches(selector, w.labels));
  }

  /** The container's environment as the process sees it: secrets resolved, field references and $(VAR) expanded. */
  env(container: IContainer, podName: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const variable of container.env ?? []) {
      const secretRef = variable.valueFrom?.secretKeyRef;
      const field = variable.valueFrom?.fieldRef?.fieldPath;
      if (variable.value !== undefined) env[variable.name] = variable.value.replace(/\$\((\w+)\)/g, (whole, name: string) => env[name] ?? whole);
      else if (secretRef) {
        const value = this.find<ISecret>('Secret', secretRef.name ?? '').stringData?.[secretRef.key];
        if (value === undefined) throw new Error(`${variable.name}: Secret ${secretRef.name} has no key ${secretRef.key}`);
        env[variable.name] = value;
      } else if (field === 'metadata.name') env[variable.name] = podName;
      else if (field === 'status.podIP') env[variable.name] = '10.0.0.7';
      else throw new Error(`${variable.name}: unsupported value source`);
    }
    return env;
  }

  /** The repository file behind a path in a container: a key of a generated ConfigMap mounted above it. */
  fileOnDisk(spec: IPodSpec, container: IContainer, inPodPath: string): string {
    const mount = (container.volumeMounts ?? []).find((m) => inPodPath.startsWith(`${m.mountPath}/`));
    if (!mount) throw new Error(`${inPodPath} is not under any volume mount of ${container.name}`);
    const configMapName = (spec.volumes ?? []).find((v) => v.name === mount.name)?.configMap?.name ?? '';
    const generated = this.generated.get(configMapName);
    if (!generated) throw new Error(`volume ${mount.name} is not a generated ConfigMap`);
    const file = generated.files.get(path.relative(mount.mountPath, inPodPath));
    if (!file) throw new Error(`ConfigMap ${configMapName} has no key ${path.relative(mount.mountPath, inPodPath)}`);
    return file;
  }
}

type ILabelSelector = NonNullable<INetworkPolicy['spec']>['podSelector'];

function matches(selector: ILabelSelector | Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const s: ILabelSelector = 'matchLabels' in selector || 'matchExpressions' in selector ? (selector as ILabelSelector) : { matchLabels: selector as Record<string, string> };
  const byLabels = Object.entries(s.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (s.matchExpressions ?? []).every((e) => {
    if (e.operator === 'In') return (e.values ?? []).includes(labels[e.key]);
    if (e.operator === 'NotIn') return !(e.values ?? []).includes(labels[e.key]);
    if (e.operator === 'Exists') return e.key in labels;
    if (e.operator === 'DoesNotExist') return !(e.key in labels);
    throw new Error(`selector operator ${e.operator}`);
  });
  return byLabels && byExpressions;
}

const rendered = new Map(variants.map((v) => [v, new Variant(v)]));
const base = rendered.get('base') as Variant;
const baseKustomization = readKustomization(path.join(k8sRoot, 'base'));

/** Model classes of kubernetes-models: each validates with the Kubernetes JSON schema of its kind (compiled by ajv). */
const models: Record<string, (data: unknown) => { validate(): void }> = {
  'apps/v1/Deployment': (d) => new Deployment(d as IDeployment),
  'apps/v1/StatefulSet': (d) => new StatefulSet(d as IStatefulSet),
  'autoscaling/v2/HorizontalPodAutoscaler': (d) => new HorizontalPodAutoscaler(d as IHorizontalPodAutoscaler),
  'batch/v1/Job': (d) => new Job(d as IJob),
  'networking.k8s.io/v1/Ingress': (d) => new Ingress(d as IIngress),
  'networking.k8s.io/v1/NetworkPolicy': (d) => new NetworkPolicy(d as INetworkPolicy),
  'policy/v1/PodDisruptionBudget': (d) => new PodDisruptionBudget(d as IPodDisruptionBudget),
  'v1/ConfigMap': (d) => new ConfigMap(d as never),
  'v1/Secret': (d) => new Secret(d as ISecret),
  'v1/Service': (d) => new Service(d as IService),
  'v1/ServiceAccount': (d) => new ServiceAccount(d as never),
  'monitoring.coreos.com/v1/ServiceMonitor': (d) => new ServiceMonitor(d as IServiceMonitor),
};

/** The TypeScript interface of each kind, for the unknown-field check. */
const typeImports: Record<string, { module: string; type: string }> = {
  'apps/v1/Deployment': { module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
  'apps/v1/StatefulSet': { module: 'kubernetes-models/apps/v1/StatefulSet', type: 'IStatefulSet' },
  'autoscaling/v2/HorizontalPodAutoscaler': { module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', type: 'IHorizontalPodAutoscaler' },
  'batch/v1/Job': { module: 'kubernetes-models/batch/v1/Job', type: 'IJob' },
  'networking.k8s.io/v1/Ingress': { module: 'kubernetes-models/networking.k8s.io/v1/Ingress', type: 'IIngress' },
  'networking.k8s.io/v1/NetworkPolicy': { module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy', type: 'INetworkPolicy' },
  'policy/v1/PodDisruptionBudget': { module: 'kubernetes-models/policy/v1/PodDisruptionBudget', type: 'IPodDisruptionBudget' },
  'v1/ConfigMap': { module: 'kubernetes-models/v1/ConfigMap', type: 'IConfigMap' },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', type: 'ISecret' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', type: 'IService' },
  'v1/ServiceAccount': { module: 'kubernetes-models/v1/ServiceAccount', type: 'IServiceAccount' },
  'monitoring.coreos.com/v1/ServiceMonitor': { module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', type: 'IServiceMonitor' },
};

const kindKey = (m: Manifest): string => `${m.apiVersion}/${m.kind}`;
const where = (m: LoadedManifest): string => `${m.file}#${m.index} ${m.manifest.kind}/${m.manifest.metadata.name}`;

/**
 * JSON schemas of Kubernetes allow unknown fields (the API server drops or rejects them), so a typo such as
 * `readinesProbe` passes them. TypeScript's excess-property check on the same models' interfaces catches it.
 */
function unknownFieldErrors(loaded: LoadedManifest[]): string[] {
  const imports = new Set<string>();
  const lines: string[] = [];
  const origins: string[] = [];
  loaded.forEach((m, i) => {
    const t = typeImports[kindKey(m.manifest)];
    imports.add(`import type { ${t.type} } from '${t.module}';`);
    lines.push(`export const m${i}: ${t.type} = ${JSON.stringify(m.manifest, null, 1)};`);
    origins.push(where(m));
  });
  const source = [...imports, ...lines].join('\n');
  // A virtual file next to this test, so that module resolution finds the repository's node_modules.
  const file = path.join(__dirname, '__k8s_manifests__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest));
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const sourceFile = program.getSourceFile(file);
  return ts.getPreEmitDiagnostics(program, sourceFile).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    if (d.file === undefined || d.start === undefined) return message;
    // Name the manifest the error is in: the nearest `export const mN` above it.
    const before = source.slice(0, d.start);
    const index = Number(/export const m(\d+):[^]*$/.exec(before)?.[1] ?? -1);
    return `${origins[index] ?? '?'}: ${message}`;
  });
}

function onlyContainer(spec: IPodSpec): IContainer {
  if (spec.containers.length !== 1) throw new Error(`expected one container, got ${spec.containers.length}`);
  return spec.containers[0];
}

function secondsOf(text: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new Error(`not a duration: ${text}`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] ?? 's'] as number;
  return Number(match[1]) * unit;
}

function preStopSleepSeconds(container: IContainer): number {
  const command = container.lifecycle?.preStop?.exec?.command ?? [];
  expect(command[0]).toBe('sleep');
  return Number(command[1]);
}

// ---- Kubernetes: where the Redis addresses lead, and who may go there -------------------------------------------

const roleOf: Record<string, Role> = { 'switchboard-gateway': 'gateway', 'switchboard-worker': 'worker' };
const isRedis = (w: Workload): boolean => w.kind === 'StatefulSet' && (w.labels['app.kubernetes.io/component'] ?? '').startsWith('redis');

/** A connection some pod makes: from a workload's pods to a port of another's, and which setting says so. */
interface Flow {
  from: Workload;
  to: Workload;
  port: number;
  why: string;
}

/**
 * The workload whose pods serve `host:port`: a Service name, or a StatefulSet pod's stable name `<pod>.<service>`
 * (headless Service, ordinal below the replica count). Pod names are reached on the container port itself; a Service
 * name on a Service port that leads to a named container port.
 */
function serving(variant: Variant, host: string, port: number, why: string): { to: Workload; port: number } {
  const dot = host.indexOf('.');
  const serviceName = dot < 0 ? host : host.slice(dot + 1);
  const service = variant.all<IService>('Service').find((s) => s.metadata?.name === serviceName);
  if (!service) throw new Error(`${why}: ${host}:${port}: no Service ${serviceName} in ${variant.name}`);
  const selected = variant.selectedBy(service.spec?.selector);
  if (selected.length !== 1) throw new Error(`${why}: Service ${serviceName} selects ${selected.length} workloads`);
  const workload = selected[0];
  const containerPorts = workload.spec.containers.flatMap((c) => c.ports ?? []);
  if (dot >= 0) {
    const pod = host.slice(0, dot);
    const statefulSet = workload.manifest as unknown as IStatefulSet;
    if (service.spec?.clusterIP !== 'None') throw new Error(`${why}: ${host}: pod names need a headless Service`);
    if (workload.kind !== 'StatefulSet' || statefulSet.spec?.serviceName !== serviceName) throw new Error(`${why}: ${host}: no StatefulSet governed by ${serviceName}`);
    const ordinal = pod.startsWith(`${workload.name}-`) ? Number(pod.slice(workload.name.length + 1)) : NaN;
    if (!Number.isInteger(ordinal) || ordinal >= (statefulSet.spec?.replicas ?? 1)) throw new Error(`${why}: ${host}: ${workload.name} has no pod ${pod}`);
    if (!containerPorts.some((p) => p.containerPort === port)) throw new Error(`${why}: ${host}: no container of ${pod} listens on ${port}`);
    return { to: workload, port };
  }
  const servicePort = (service.spec?.ports ?? []).find((p) => p.port === port);
  const target = containerPorts.find((p) => p.name === servicePort?.targetPort || p.containerPort === servicePort?.targetPort);
  if (!servicePort || !target) throw new Error(`${why}: Service ${serviceName} has no port ${port} leading to a container port`);
  return { to: workload, port: target.containerPort };
}

/** `host:port` entries of a space-separated list. */
function hostPorts(list: string): { host: string; port: number }[] {
  return list.split(/\s+/).filter((e) => e !== '').map((e) => ({ host: e.slice(0, e.lastIndexOf(':')), port: Number(e.slice(e.lastIndexOf(':') + 1)) }));
}

/** Settings of the Redis scripts that name other members, `host:port` each. */
const MEMBER_LISTS = ['REDIS_CLUSTER_NODES', 'REDIS_NODES', 'REDIS_SENTINELS'];

/**
 * Every connection the manifests imply: gateways and workers to what SWITCHBOARD_REDIS_URL names (and on Redis
 * Cluster to every node's data port, wherever a slot lives; through Sentinel to the data nodes the sentinels hand
 * out), the Redis scripts to the members they list, and Redis pods to every port of their own set (cluster bus,
 * replication, sentinels talking to each other).
 */
function requiredFlows(variant: Variant): Flow[] {
  const flows: Flow[] = [];
  for (const [name] of Object.entries(roleOf)) {
    const client = variant.workload('Deployment', name);
    const url = variant.env(onlyContainer(client.spec), name).SWITCHBOARD_REDIS_URL;
    const address = parseRedisAddress(url);
    const why = `${name} SWITCHBOARD_REDIS_URL`;
    if (address.kind === 'cluster') {
      for (const seed of address.cluster.seeds) flows.push({ from: client, ...serving(variant, seed.host, seed.port, why), why });
      continue;
    }
    for (const shard of address.shards) {
      const { host, port, sentinels } = shard.connection;
      if (!sentinels) {
        flows.push({ from: client, ...serving(variant, host ?? '', port ?? 6379, why), why });
        continue;
      }
      for (const s of sentinels) {
        const sentinel = serving(variant, s.host ?? '', s.port ?? 26379, why);
        flows.push({ from: client, ...sentinel, why });
        // The sentinels answer with the addresses the data nodes announce: those in REDIS_NODES.
        for (const c of sentinel.to.spec.containers) {
          for (const node of hostPorts(variant.env(c, `${sentinel.to.name}-0`).REDIS_NODES ?? '')) {
            flows.push({ from: client, ...serving(variant, node.host, node.port, why), why: `${why} via the sentinels` });
          }
        }
      }
    }
  }
  for (const workload of variant.workloads) {
    for (const c of workload.spec.containers) {
      const env = variant.env(c, `${workload.name}-0`);
      for (const list of MEMBER_LISTS.filter((l) => env[l] !== undefined)) {
        for (const { host, port } of hostPorts(env[list])) {
          const why = `${workload.name}/${c.name} ${list}`;
          flows.push({ from: workload, ...serving(variant, host, port, why), why });
        }
      }
    }
    // A set of several Redis pods talks to itself; a single Redis does not.
    if (isRedis(workload) && ((workload.manifest as unknown as IStatefulSet).spec?.replicas ?? 1) > 1) {
      for (const p of workload.spec.containers.flatMap((c) => c.ports ?? [])) {
        flows.push({ from: workload, to: workload, port: p.containerPort, why: `${workload.name} to its own port ${p.name}` });
      }
    }
  }
  return flows;
}

/** Whether the NetworkPolicies let pods with `fromLabels` open `port` on `to`'s pods (same namespace). */
function admitted(variant: Variant, fromLabels: Record<string, string>, to: Workload, port: number): boolean {
  const policies = variant
    .all<INetworkPolicy>('NetworkPolicy')
    .filter((p) => matches(p.spec?.podSelector, to.labels) && (p.spec?.policyTypes ?? ['Ingress']).includes('Ingress'));
  if (policies.length === 0) return true;
  const portNames = new Map(to.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => [p.name, p.containerPort] as const)));
  return policies.some((policy) =>
    (policy.spec?.ingress ?? []).some((rule) => {
      const peers = rule.from ?? [];
      const fromOk =
        peers.length === 0 ||
        peers.some((peer) => {
          if (peer.namespaceSelector || peer.ipBlock) throw new Error(`${policy.metadata?.name}: namespace and IP peers are not evaluated here`);
          return matches(peer.podSelector, fromLabels);
        });
      const portOk =
        (rule.ports ?? []).length === 0 ||
        (rule.ports ?? []).some((p) => (p.protocol ?? 'TCP') === 'TCP' && (typeof p.port === 'string' ? portNames.get(p.port) : p.port) === port);
      return fromOk && portOk;
    }),
  );
}

/** Whether `kubectl` is on the PATH (its built-in kustomize renders the variants the way `kubectl apply -k` would). */
const kubectlPath = (process.env.PATH ?? '')
  .split(path.delimiter)
  .map((dir) => path.join(dir, 'kubectl'))
  .find((candidate) => existsSync(candidate));

// ---- Kubernetes: the checks --------------------------------------------------------------------------------------

describe('k8s kustomizations', () => {
  test('the base lists every manifest in its directory, and only existing ones', () => {
    const dir = path.join(k8sRoot, 'base');
    const onDisk = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    const listed = [...(baseKustomization.resources ?? []), ...(baseKustomization.configMapGenerator ?? []).flatMap((g) => g.files)];
    expect([...listed].sort()).toEqual([...onDisk].sort());
  });

  test.each(components)('%s lists every file in its directory, and is used by an overlay of the same name', (component) => {
    const dir = path.join(k8sRoot, component);
    const k = readKustomization(dir);
    expect(k.kind).toBe('Component');
    const onDisk = readdirSync(dir).filter((f) => f !== 'kustomization.yaml');
    const listed = [...(k.resources ?? []), ...(k.configMapGenerator ?? []).flatMap((g) => g.files)];
    expect([...listed].sort()).toEqual([...onDisk].sort());
    const overlay = readKustomization(path.join(k8sRoot, 'overlays', path.basename(component)));
    expect(overlay.resources).toEqual(['../../base']);
    expect(overlay.components).toEqual([`../../${component}`]);
  });

  (kubectlPath ? test.each(variants) : test.skip.each(variants))('%s: this test renders what kubectl kustomize renders (name hashes aside)', (name) => {
    const variant = rendered.get(name) as Variant;
    let output = execFileSync(kubectlPath ?? 'kubectl', ['kustomize', path.join(k8sRoot, name)], { encoding: 'utf8' });
    // Generated ConfigMaps get a content hash in their name (and every reference follows it); this renderer omits it.
    for (const [generated, { hashed }] of variant.generated) {
      if (!hashed) continue;
      const hashedName = new RegExp(`\\b${generated}-[a-z0-9]{10}\\b`, 'g');
      expect(output).toMatch(hashedName);
      output = output.replace(hashedName, generated);
    }
    const byKey = (list: Manifest[]): Manifest[] => [...list].sort((a, b) => `${kindKey(a)}/${a.metadata.name}`.localeCompare(`${kindKey(b)}/${b.metadata.name}`));
    const theirs = parseAllDocuments(output).map((d) => d.toJS() as Manifest);
    expect(byKey(variant.manifests.map((m) => m.manifest))).toEqual(byKey(theirs));
  });
});

describe.each(variants)('k8s %s', (name) => {
  const variant = rendered.get(name) as Variant;

  test('every object validates against its Kubernetes JSON schema (ServiceMonitor: the CRD schema)', () => {
    const errors: string[] = [];
    for (const m of variant.manifests) {
      const model = models[kindKey(m.manifest)];
      if (!model) {
        errors.push(`${where(m)}: no schema for ${kindKey(m.manifest)}`);
        continue;
      }
      try {
        model(m.manifest).validate();
      } catch (err) {
        errors.push(`${where(m)}: ${(err as Error).message}`);
      }
    }
    expect(errors).toEqual([]);
    expect(variant.manifests.map((m) => m.manifest.kind)).toEqual(
      expect.arrayContaining(['Deployment', 'Service', 'Ingress', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'StatefulSet', 'ConfigMap', 'Secret', 'ServiceMonitor', 'NetworkPolicy']),
    );
  });

  test('no object has a field its type does not define (typos pass the JSON schemas)', () => {
    expect(unknownFieldErrors(variant.manifests)).toEqual([]);
  });

  describe.each(Object.keys(roleOf))('%s', (deployment) => {
    const role = roleOf[deployment];
    const pod = variant.workload('Deployment', deployment);
    const container = onlyContainer(pod.spec);
    const env = variant.env(container, `${deployment}-7d9c6-abcde`);

    test('runs the CLI role through the image entrypoint', () => {
      expect(container.command).toBeUndefined();
      expect(container.args).toEqual([role]);
      expect(roles).toContain(role);
    });

    test('every SWITCHBOARD_* variable is one the CLI reads', () => {
      const names = Object.keys(env).filter((n) => n.startsWith('SWITCHBOARD_'));
      expect(names.length).toBeGreaterThan(3);
      expect(names.filter((n) => !cliEnvNames.has(n))).toEqual([]);
    });

    test('the CLI accepts the whole environment and listens on the container port', () => {
      const config = runConfig(role, { ...env, SWITCHBOARD_CONFIG: variant.fileOnDisk(pod.spec, container, env.SWITCHBOARD_CONFIG) });
      expect(container.ports ?? []).toEqual([expect.objectContaining({ name: 'http', containerPort: config.port })]);
      expect(config.nodeName).toBe(`${deployment}-7d9c6-abcde`);
      expect(Object.keys(config.channels.namespaces)).toEqual(expect.arrayContaining(['chat', 'doc']));
      if (role === 'gateway') {
        expect(config.auth.hmacSecret).toBeDefined();
        expect(config.apiKey).toBeDefined();
      }
    });

    test('probes: readiness on /readyz, liveness on /healthz, both on the CLI port', () => {
      const port = Number(env.SWITCHBOARD_PORT ?? cliDefaults.port);
      const named = new Map((container.ports ?? []).map((p) => [p.name, p.containerPort]));
      const probePort = (p: number | string | undefined): number | undefined => (typeof p === 'string' ? named.get(p) : p);
      expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(probePort(container.readinessProbe?.httpGet?.port)).toBe(port);
      expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(probePort(container.livenessProbe?.httpGet?.port)).toBe(port);
    });

    test('the grace period outlasts preStop plus SWITCHBOARD_SHUTDOWN_GRACE', () => {
      const shutdownGrace = runConfig(role, { SWITCHBOARD_REDIS_URL: 'redis://x:1', SWITCHBOARD_SHUTDOWN_GRACE: env.SWITCHBOARD_SHUTDOWN_GRACE }).shutdownGraceMs / 1000;
      expect(env.SWITCHBOARD_SHUTDOWN_GRACE).toBeDefined();
      const preStop = container.lifecycle?.preStop ? preStopSleepSeconds(container) : 0;
      if (role === 'gateway') expect(preStop).toBeGreaterThan(0);
      expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(shutdownGrace + preStop);
    });

    test('mounts the generated config at SWITCHBOARD_CONFIG and gives /tmp a volume', () => {
      expect(existsSync(variant.fileOnDisk(pod.spec, container, env.SWITCHBOARD_CONFIG))).toBe(true);
      expect((container.volumeMounts ?? []).map((m) => m.mountPath)).toContain('/tmp');
    });

    test('runs the image kustomize sets, as the non-root user the Dockerfile creates', () => {
      const image = (baseKustomization.images ?? []).find((i) => i.name === 'switchboard');
      expect(container.image).toBe(`${image?.newName}:${image?.newTag}`);
      expect(pod.spec.securityContext?.runAsUser).toBe(dockerfile.runtimeUid);
    });
  });

  test('gateways and workers agree on the Redis address and the number of document partitions', () => {
    const configs = Object.entries(roleOf).map(([deployment, role]) => {
      const pod = variant.workload('Deployment', deployment);
      const container = onlyContainer(pod.spec);
      const env = variant.env(container, deployment);
      return runConfig(role, { ...env, SWITCHBOARD_CONFIG: variant.fileOnDisk(pod.spec, container, env.SWITCHBOARD_CONFIG) });
    });
    expect(configs[0].docPartitions).toBe(configs[1].docPartitions);
    expect(configs[0].redis).toEqual(configs[1].redis);
  });

  test('the Redis address parses as the engine parses it and leads to pods of this variant on ports they listen on', () => {
    // serving() throws, naming the setting, for a host that is no Service or pod here or a port nobody listens on.
    const flows = requiredFlows(variant);
    const servedBy = new Set(flows.filter((f) => f.why.includes('SWITCHBOARD_REDIS_URL')).map((f) => f.to.name));
    expect(servedBy.size).toBeGreaterThan(0);
    for (const target of servedBy) expect(isRedis(variant.workload('StatefulSet', target))).toBe(true);
  });

  test('NetworkPolicies admit exactly the connections the manifests make to Redis, and nothing else', () => {
    const redis = variant.workloads.filter(isRedis);
    expect(redis.length).toBeGreaterThan(0);
    const flows = requiredFlows(variant);
    const refused = flows.filter((f) => !admitted(variant, f.from.labels, f.to, f.port)).map((f) => `${f.from.name} -> ${f.to.name}:${f.port} (${f.why})`);
    expect(refused).toEqual([]);

    const stranger: Record<string, string> = { 'app.kubernetes.io/name': 'something-else' };
    const unexpected: string[] = [];
    for (const target of redis) {
      // Isolated: without a policy selecting them, every pod in the cluster could reach these.
      expect(variant.all<INetworkPolicy>('NetworkPolicy').some((p) => matches(p.spec?.podSelector, target.labels))).toBe(true);
      for (const port of target.spec.containers.flatMap((c) => c.ports ?? []).map((p) => p.containerPort)) {
        if (admitted(variant, stranger, target, port)) unexpected.push(`any pod -> ${target.name}:${port}`);
        for (const source of variant.workloads) {
          const needed = flows.some((f) => f.from === source && f.to === target && f.port === port);
          if (!needed && admitted(variant, source.labels, target, port)) unexpected.push(`${source.name} -> ${target.name}:${port}`);
        }
      }
    }
    expect(unexpected).toEqual([]);
    // No policy guards pods that are not there (one left behind by a removed Redis).
    for (const policy of variant.all<INetworkPolicy>('NetworkPolicy')) expect(variant.selectedBy(policy.spec?.podSelector).length).toBeGreaterThan(0);
  });

  test('every workload: non-root, read-only root filesystem, no capabilities, no service links, no API token, pinned images', () => {
    for (const { spec } of variant.workloads) {
      expect(spec.securityContext?.runAsNonRoot).toBe(true);
      expect(spec.securityContext?.runAsUser).toBeGreaterThan(0);
      expect(spec.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
      expect(spec.automountServiceAccountToken).toBe(false);
      // Service links would inject SWITCHBOARD_*_PORT=tcp://... variables next to the CLI's own settings.
      expect(spec.enableServiceLinks).toBe(false);
      for (const c of spec.containers) {
        expect(c.securityContext).toEqual(
          expect.objectContaining({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } }),
        );
        expect(c.image).toMatch(/:[0-9][\w.-]*$/);
      }
    }
  });

  test('every container has resource requests and a memory limit; every long-running one readiness and liveness probes', () => {
    for (const { kind, name: workload, spec } of variant.workloads) {
      for (const c of spec.containers) {
        const at = `${workload}/${c.name}`;
        expect([at, c.resources?.requests]).toEqual([at, expect.objectContaining({ cpu: expect.anything(), memory: expect.anything() })]);
        expect([at, c.resources?.limits?.memory]).toEqual([at, expect.anything()]);
        if (kind !== 'Job') expect([at, Boolean(c.readinessProbe), Boolean(c.livenessProbe)]).toEqual([at, true, true]);
      }
    }
  });

  test('every Deployment and every StatefulSet of several pods has one PodDisruptionBudget, selecting its pods', () => {
    const budgets = variant.all<IPodDisruptionBudget>('PodDisruptionBudget');
    // A budget for one pod either blocks every node drain or allows everything: the base's single Redis has none.
    const several = (w: Workload): boolean => w.kind === 'Deployment' || ((w.manifest as unknown as IStatefulSet).spec?.replicas ?? 1) > 1;
    for (const w of variant.workloads.filter((x) => x.kind !== 'Job' && several(x))) {
      const own = budgets.filter((b) => matches(b.spec?.selector, w.labels));
      expect([w.name, own.length]).toEqual([w.name, 1]);
      expect(own[0].spec?.maxUnavailable ?? own[0].spec?.minAvailable).toBeDefined();
      const selector = ((w.manifest as unknown as IStatefulSet).spec?.selector.matchLabels ?? {}) as Record<string, string>;
      expect(own[0].spec?.selector?.matchLabels).toEqual(selector);
    }
  });

  test('every Service selects pods, and its target ports are ports they name', () => {
    for (const service of variant.all<IService>('Service')) {
      const selected = variant.selectedBy(service.spec?.selector);
      expect([service.metadata?.name, selected.length]).toEqual([service.metadata?.name, 1]);
      const names = selected[0].spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      for (const port of service.spec?.ports ?? []) expect(names).toContain(port.targetPort);
    }
  });

  test('a container that runs a script runs one from a generated ConfigMap, and sets only variables that script reads', () => {
    for (const { name: workload, spec } of variant.workloads) {
      for (const c of spec.containers) {
        if (c.command?.[0] !== 'sh') continue;
        const script = readFileSync(variant.fileOnDisk(spec, c, c.command[1]), 'utf8');
        const unread = (c.env ?? []).map((e) => e.name).filter((n) => n !== 'POD_NAME' && !script.includes(n));
        expect([`${workload}/${c.name}`, unread]).toEqual([`${workload}/${c.name}`, []]);
      }
    }
  });
});

describe('k8s base', () => {
  const variant = base;

  test('gateways and workers use the base Redis', () => {
    for (const deployment of Object.keys(roleOf)) {
      expect(variant.env(onlyContainer(variant.workload('Deployment', deployment).spec), deployment).SWITCHBOARD_REDIS_URL).toBe('redis://switchboard-redis:6379');
    }
  });

  test('the unknown-field check does catch a misspelt field', () => {
    const gateway = variant.manifests.find((m) => m.manifest.kind === 'Deployment') as LoadedManifest;
    const broken = JSON.parse(JSON.stringify(gateway.manifest)) as IDeployment;
    (broken.spec?.template.spec?.containers[0] as unknown as Record<string, unknown>).readinesProbe = {};
    const errors = unknownFieldErrors([{ ...gateway, manifest: broken as unknown as Manifest }]);
    expect(errors).toEqual([expect.stringContaining("'\"readinesProbe\"' does not exist")]);
  });

  test('the NetworkPolicy check does catch a policy that admits too much', () => {
    const open = new Variant('base');
    const policy = open.find<INetworkPolicy>('NetworkPolicy', 'switchboard-redis');
    (policy.spec?.ingress ?? [])[0].from = [];
    const redis = open.workload('StatefulSet', 'switchboard-redis');
    expect(admitted(open, { 'app.kubernetes.io/name': 'something-else' }, redis, 6379)).toBe(true);
    expect(admitted(base, { 'app.kubernetes.io/name': 'something-else' }, base.workload('StatefulSet', 'switchboard-redis'), 6379)).toBe(false);
  });

  test('gateways spread across nodes, roll one at a time, and leave the replica count to the HPA', () => {
    const deployment = variant.find<IDeployment>('Deployment', 'switchboard-gateway');
    const pod = variant.workload('Deployment', 'switchboard-gateway');
    const spread = pod.spec.topologySpreadConstraints ?? [];
    const byHost = spread.find((c) => c.topologyKey === 'kubernetes.io/hostname');
    expect(byHost).toEqual(expect.objectContaining({ maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule' }));
    expect(byHost?.labelSelector?.matchLabels).toEqual(deployment.spec?.selector.matchLabels);
    expect(deployment.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    expect(deployment.spec?.replicas).toBeUndefined();
  });

  test('selectors: the Deployment, Service, PDB and HPA all point at the gateway pods', () => {
    const deployment = variant.find<IDeployment>('Deployment', 'switchboard-gateway');
    const pod = variant.workload('Deployment', 'switchboard-gateway');
    const selector = deployment.spec?.selector.matchLabels ?? {};
    expect(pod.labels).toEqual(expect.objectContaining(selector));

    const service = variant.find<IService>('Service', 'switchboard-gateway');
    expect(pod.labels).toEqual(expect.objectContaining(service.spec?.selector ?? { missing: 'selector' }));
    const container = onlyContainer(pod.spec);
    expect(service.spec?.ports).toEqual([expect.objectContaining({ name: 'http', targetPort: 'http' })]);
    expect(container.ports?.map((p) => p.name)).toContain('http');

    const pdb = variant.find<IPodDisruptionBudget>('PodDisruptionBudget', 'switchboard-gateway');
    expect(pdb.spec?.selector?.matchLabels).toEqual(selector);

    const hpa = variant.find<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler', 'switchboard-gateway');
    expect(hpa.spec?.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'switchboard-gateway' });
    expect(hpa.spec?.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec?.metrics?.map((m) => m.resource?.name)).toEqual(['cpu']);
    // The HPA computes CPU utilization against requests.
    expect(container.resources?.requests?.cpu).toBeDefined();
  });

  test('the Ingress routes the WebSocket endpoint and the API to the gateway Service with WebSocket timeouts', () => {
    const ingress = variant.find<IIngress>('Ingress', 'switchboard-gateway');
    const annotations = (ingress.metadata?.annotations ?? {}) as Record<string, string>;
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThan(2 * PING_INTERVAL_SECONDS);
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThan(2 * PING_INTERVAL_SECONDS);
    expect(ingress.spec?.ingressClassName).toBe('nginx');
    const paths = (ingress.spec?.rules ?? []).flatMap((r) => r.http?.paths ?? []);
    expect(paths.map((p) => p.path).sort()).toEqual(['/api/', '/connection/websocket']);
    for (const p of paths) expect(p.backend.service).toEqual({ name: 'switchboard-gateway', port: { name: 'http' } });
  });

  test('ServiceMonitors select the gateway and worker Services and scrape /metrics on a port they name', () => {
    const monitors = variant.all<IServiceMonitor>('ServiceMonitor');
    const services = variant.all<IService>('Service');
    const scraped = new Set<string>();
    for (const monitor of monitors) {
      const wanted = monitor.spec.selector.matchLabels ?? {};
      const matched = services.filter((s) => Object.entries(wanted).every(([k, v]) => (s.metadata?.labels as Record<string, string> | undefined)?.[k] === v));
      expect(matched).toHaveLength(1);
      const portNames = (matched[0].spec?.ports ?? []).map((p) => p.name);
      for (const endpoint of monitor.spec.endpoints ?? []) {
        expect(portNames).toContain(endpoint.port);
        expect(endpoint.path).toBe('/metrics');
      }
      scraped.add(matched[0].metadata?.name ?? '');
    }
    // The job label is the Service name: the dashboard filters on these.
    expect([...scraped].sort()).toEqual(['switchboard-gateway', 'switchboard-worker']);
    expect([...scraped].sort()).toEqual([...prometheusJobs].sort());
  });

  test('the Secret holds every key the pods read, with placeholder values clearly marked', () => {
    const data = variant.find<ISecret>('Secret', 'switchboard-secrets').stringData ?? {};
    for (const deployment of Object.keys(roleOf)) {
      for (const variable of onlyContainer(variant.workload('Deployment', deployment).spec).env ?? []) {
        const ref = variable.valueFrom?.secretKeyRef;
        if (ref) expect(Object.keys(data)).toContain(ref.key);
      }
    }
    expect(data['token-hmac-secret']).toMatch(/REPLACE-ME/);
    expect(data['api-key']).toMatch(/REPLACE-ME/);
  });

  test('the ConfigMap holds a config file the CLI reads without unknown keys, the same as deploy/switchboard.yaml', () => {
    const k8sConfig = read('k8s', 'base', 'switchboard.yaml');
    expect(k8sConfig).toBe(read('deploy', 'switchboard.yaml'));
    const parsed = parseConfigFile(k8sConfig, 'switchboard.yaml');
    expect(parsed.unknownKeys).toEqual([]);
    expect(parsed.channels.namespaces.doc?.documents).toBe(true);
    // Secrets come from the Secret, not from the file.
    expect(parsed.settings.tokenHmacSecret).toBeUndefined();
    expect(parsed.settings.apiKey).toBeUndefined();
  });
});

/** What a Redis component must leave of the base, and put in place of its Redis. */
function replacesBaseRedis(variant: Variant): void {
  expect(variant.all<IStatefulSet>('StatefulSet').map((s) => s.metadata?.name)).not.toContain('switchboard-redis');
  expect(variant.all<IService>('Service').map((s) => s.metadata?.name)).not.toContain('switchboard-redis');
  expect(variant.all<INetworkPolicy>('NetworkPolicy').map((s) => s.metadata?.name)).not.toContain('switchboard-redis');
  // Everything else of the base is still there, unchanged but for the Redis address and the worker's WAIT.
  const kept = base.manifests.filter((m) => !m.manifest.metadata.name.startsWith('switchboard-redis'));
  for (const { manifest } of kept) expect(variant.manifests.some((m) => sameObject(m.manifest, manifest))).toBe(true);
}

/** The worker's document acknowledgements wait for a replica, as the CLI reads the setting. */
function workerWaitsForReplicas(variant: Variant): void {
  const pod = variant.workload('Deployment', 'switchboard-worker');
  const container = onlyContainer(pod.spec);
  const env = variant.env(container, 'switchboard-worker');
  const config = runConfig('worker', { ...env, SWITCHBOARD_CONFIG: variant.fileOnDisk(pod.spec, container, env.SWITCHBOARD_CONFIG) });
  expect(config.docWaitReplicas).toBe(1);
  // The gateway has no such setting: the component patches only the worker.
  expect(variant.env(onlyContainer(variant.workload('Deployment', 'switchboard-gateway').spec), 'g').SWITCHBOARD_DOC_WAIT_REPLICAS).toBeUndefined();
}

describe('k8s overlays/redis-cluster', () => {
  const variant = rendered.get('overlays/redis-cluster') as Variant;
  const nodes = variant.workload('StatefulSet', 'switchboard-redis-cluster');
  const statefulSet = nodes.manifest as unknown as IStatefulSet;
  const redis = onlyContainer(nodes.spec);

  test('replaces the base Redis, and the worker waits for a replica', () => {
    replacesBaseRedis(variant);
    workerWaitsForReplicas(variant);
  });

  test('gateways and workers get a redis+cluster:// address whose seeds are the cluster pods', () => {
    const url = variant.env(onlyContainer(variant.workload('Deployment', 'switchboard-gateway').spec), 'g').SWITCHBOARD_REDIS_URL;
    const address = parseRedisAddress(url);
    if (address.kind !== 'cluster') throw new Error(`expected a cluster address, got ${url}`);
    expect(address.cluster.seeds.map((s) => `${s.host}:${s.port}`)).toEqual(
      Array.from({ length: statefulSet.spec?.replicas ?? 0 }, (_, i) => `switchboard-redis-cluster-${i}.switchboard-redis-cluster:6379`),
    );
  });

  test('six nodes made three primaries with a replica each, by a Job that lists every pod', () => {
    expect(statefulSet.spec?.replicas).toBe(6);
    const job = variant.workload('Job', 'switchboard-redis-cluster-bootstrap');
    const env = variant.env(onlyContainer(job.spec), 'job');
    expect(hostPorts(env.REDIS_CLUSTER_NODES).map((n) => n.host)).toEqual(
      Array.from({ length: 6 }, (_, i) => `switchboard-redis-cluster-${i}.switchboard-redis-cluster`),
    );
    expect(env.REDIS_CLUSTER_REPLICAS).toBe('1');
    expect(job.spec.restartPolicy).toBe('OnFailure');
  });

  test('nodes start together, find each other by name before they are ready, and announce pod IP and name', () => {
    // A node is ready only once the cluster is formed, which needs all six: ordered start would wait forever.
    expect(statefulSet.spec?.podManagementPolicy).toBe('Parallel');
    const service = variant.find<IService>('Service', statefulSet.spec?.serviceName ?? '');
    expect(service.spec?.clusterIP).toBe('None');
    expect(service.spec?.publishNotReadyAddresses).toBe(true);
    const env = variant.env(redis, 'switchboard-redis-cluster-3');
    expect(env.REDIS_CLUSTER_HOSTNAME).toBe('switchboard-redis-cluster-3.switchboard-redis-cluster');
    expect(redis.env?.find((e) => e.name === 'REDIS_CLUSTER_ANNOUNCE_IP')?.valueFrom?.fieldRef?.fieldPath).toBe('status.podIP');
    expect(redis.readinessProbe?.exec?.command?.join(' ')).toContain('cluster_state:ok');
    expect((redis.ports ?? []).map((p) => [p.name, p.containerPort])).toEqual([
      ['redis', 6379],
      ['cluster-bus', 16379],
    ]);
  });
});

describe('k8s overlays/redis-sentinel', () => {
  const variant = rendered.get('overlays/redis-sentinel') as Variant;
  const set = variant.workload('StatefulSet', 'switchboard-redis-sentinel');
  const statefulSet = set.manifest as unknown as IStatefulSet;
  const containerNamed = (n: string): IContainer => set.spec.containers.find((c) => c.name === n) as IContainer;

  test('replaces the base Redis, and the worker waits for a replica', () => {
    replacesBaseRedis(variant);
    workerWaitsForReplicas(variant);
  });

  test('three pods, each a data node and a sentinel; the set lists all of them, and the quorum is a majority', () => {
    expect(statefulSet.spec?.replicas).toBe(3);
    expect(set.spec.containers.map((c) => c.name)).toEqual(['redis', 'sentinel']);
    const pods = Array.from({ length: 3 }, (_, i) => `switchboard-redis-sentinel-${i}.switchboard-redis-sentinel`);
    for (const c of set.spec.containers) {
      const env = variant.env(c, 'switchboard-redis-sentinel-1');
      expect(hostPorts(env.REDIS_NODES)).toEqual(pods.map((host) => ({ host, port: 6379 })));
      expect(hostPorts(env.REDIS_SENTINELS)).toEqual(pods.map((host) => ({ host, port: 26379 })));
      expect(env.REDIS_HOST).toBe('switchboard-redis-sentinel-1.switchboard-redis-sentinel');
      expect(Number(env.SENTINEL_QUORUM)).toBe(2);
    }
    expect(containerNamed('redis').command?.slice(-1)).toEqual(['redis']);
    expect(containerNamed('sentinel').command?.slice(-1)).toEqual(['sentinel']);
    // Both keep their state on the pod's volume: the AOF, and the sentinel's view of who is primary.
    for (const c of set.spec.containers) expect(c.volumeMounts?.find((m) => m.name === 'data')?.mountPath).toBe('/data');
  });

  test('gateways and workers ask every sentinel, for the master the sentinels monitor', () => {
    const url = variant.env(onlyContainer(variant.workload('Deployment', 'switchboard-gateway').spec), 'g').SWITCHBOARD_REDIS_URL;
    const address = parseRedisAddress(url);
    if (address.kind !== 'shards' || address.shards.length !== 1) throw new Error(`expected one Sentinel shard, got ${url}`);
    const { sentinels, name: masterName } = address.shards[0].connection;
    const env = variant.env(containerNamed('sentinel'), 'switchboard-redis-sentinel-0');
    expect((sentinels ?? []).map((s) => ({ host: s.host, port: s.port }))).toEqual(hostPorts(env.REDIS_SENTINELS));
    expect(masterName).toBe(env.SENTINEL_MASTER_NAME);
  });

  test('pods start together, and a primary refuses writes once no replica is in sync', () => {
    // After a failover pod 0 is a replica, ready only once synced with a later pod: ordered start would deadlock.
    expect(statefulSet.spec?.podManagementPolicy).toBe('Parallel');
    const args = containerNamed('redis').args ?? [];
    expect(args[args.indexOf('--min-replicas-to-write') + 1]).toBe('1');
    expect(Number(args[args.indexOf('--min-replicas-max-lag') + 1])).toBeGreaterThan(0);
  });
});

// ---- Dockerfile ------------------------------------------------------------------------------------------------

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

const dockerfile = ((): { stages: Stage[]; runtime: Stage; runtimeUid: number; instruction(stage: Stage, name: string): string[] } => {
  // Continuation lines joined, comments dropped.
  const text = read('deploy', 'Dockerfile').replace(/\\\n/g, ' ');
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const arg = /^ARG\s+(\w+)=(\S+)/.exec(line);
    if (arg && stages.length === 0) args.set(arg[1], arg[2]);
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ from: from[1].replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? ''), name: from[2], lines: [] });
    else if (stages.length > 0) stages[stages.length - 1].lines.push(line);
  }
  const runtime = stages[stages.length - 1];
  const instruction = (stage: Stage, name: string): string[] =>
    stage.lines.filter((l) => l.toUpperCase().startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());
  const user = instruction(runtime, 'USER').at(-1) ?? 'root';
  return { stages, runtime, runtimeUid: Number(user.split(':')[0]), instruction };
})();

describe('deploy/Dockerfile', () => {
  test('multi-stage: builds with dev dependencies, runs on node:20-bookworm-slim with production dependencies only', () => {
    const { stages, runtime, instruction } = dockerfile;
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(runtime.from).toBe('node:20-bookworm-slim');
    const runs = (stage: Stage): string => instruction(stage, 'RUN').join('\n');
    const build = stages.find((s) => /npx tsc -b/.test(runs(s)));
    expect(build).toBeDefined();
    expect(runs(build as Stage)).toMatch(/npm ci(?![^\n&]*--omit=dev)/);
    // The runtime's node_modules come from a stage that installed with --omit=dev, never from the build stage.
    const copies = instruction(runtime, 'COPY').map((c) => /--from=(\S+)/.exec(c)?.[1]).filter((s): s is string => s !== undefined);
    expect(copies.length).toBeGreaterThan(0);
    for (const from of copies) {
      const source = stages.find((s) => s.name === from);
      expect(runs(source as Stage)).toMatch(/npm ci --omit=dev/);
    }
  });

  test('ENTRYPOINT is the CLI, CMD a role, EXPOSE the CLI default port, USER a non-root UID', () => {
    const { runtime, instruction, runtimeUid } = dockerfile;
    const entrypoint = JSON.parse(instruction(runtime, 'ENTRYPOINT')[0]) as string[];
    expect(entrypoint).toEqual(['node', 'packages/server/bin/switchboard.js']);
    expect(existsSync(path.join(root, entrypoint[1]))).toBe(true);
    const cmd = JSON.parse(instruction(runtime, 'CMD')[0]) as string[];
    expect(cmd).toEqual(['gateway']);
    expect(instruction(runtime, 'EXPOSE')).toEqual([String(cliDefaults.port)]);
    expect(runtimeUid).toBeGreaterThan(0);
    expect(instruction(runtime, 'WORKDIR')).toEqual(['/app']);
  });

  test('the image, the k8s gateway and npm start run gateways with the same V8 young generation size, workers with Node defaults', () => {
    expect(dockerfile.instruction(dockerfile.runtime, 'ENV')).toContain(`NODE_OPTIONS=${SEMI_SPACE_FLAG}`);
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toContain(`exec node ${SEMI_SPACE_FLAG} packages/server/bin/switchboard.js`);
    // The benchmark runs the gateways and the worker as these do.
    const bench = read('packages', 'bench', 'src', 'systems.ts');
    expect(bench).toContain(`SHIPPED_NODE_OPTIONS = '${SEMI_SPACE_FLAG}'`);
    expect(bench).toContain(`SHIPPED_WORKER_NODE_OPTIONS = ''`);
    const nodeOptions = (file: string): string => {
      const found = /name: NODE_OPTIONS\n\s+value: (.*)/.exec(read('k8s', 'base', file));
      if (!found) throw new Error(`${file} sets no NODE_OPTIONS`);
      return found[1];
    };
    expect(nodeOptions('gateway-deployment.yaml')).toContain(SEMI_SPACE_FLAG);
    // The worker replaces the image's NODE_OPTIONS without the flag: it holds no connections and commits more without.
    expect(nodeOptions('worker-deployment.yaml')).not.toContain('semi-space');
    const compose = read('deploy', 'docker-compose.yml');
    const worker = compose.slice(compose.indexOf('\n  worker: &worker'), compose.indexOf('volumes:', compose.indexOf('\n  worker: &worker')));
    expect(worker).toContain('NODE_OPTIONS: ""');
  });

  test('HEALTHCHECK probes /healthz on SWITCHBOARD_PORT with a script the image contains', () => {
    const { runtime, instruction } = dockerfile;
    const healthcheck = instruction(runtime, 'HEALTHCHECK')[0];
    expect(healthcheck).toMatch(/CMD \["node", "\/app\/deploy\/healthcheck\.js"\]/);
    expect(instruction(runtime, 'COPY')).toContain('deploy/healthcheck.js /app/deploy/healthcheck.js');
    const script = read('deploy', 'healthcheck.js');
    expect(script).toContain("'/healthz'");
    expect(script).toContain('process.env.SWITCHBOARD_PORT');
    expect(script).toContain(String(cliDefaults.port));
  });

  test('.dockerignore keeps local installs and builds out of the context, but not what the image copies', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git']));
    expect(ignored.some((p) => 'deploy/healthcheck.js'.startsWith(p.replace(/^\*\*\//, '')))).toBe(false);
  });
});

// ---- docker compose, nginx, Prometheus, Grafana ---------------------------------------------------------------

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  expose?: string[];
  depends_on?: Record<string, unknown> | string[];
  stop_grace_period?: string;
  profiles?: string[];
  networks?: string[] | Record<string, { aliases?: string[] } | null>;
}

const composeText = read('deploy', 'docker-compose.yml');
const compose = parseYaml(composeText, { merge: true }) as { services: Record<string, ComposeService>; networks?: Record<string, unknown>; volumes?: Record<string, unknown> };
const allServices = compose.services;
/** What `docker compose up` starts: the services without a profile. */
const services = Object.fromEntries(Object.entries(allServices).filter(([, s]) => s.profiles === undefined));
const switchboardServices = Object.entries(services).filter(([, s]) => s.image === 'switchboard:local');
const gatewayServices = switchboardServices.filter(([, s]) => s.command?.[0] === 'gateway').map(([name]) => name);
const profiles = ['cluster', 'sentinel'];

const dependencies = (s: ComposeService): string[] => (Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {}));
const networksOf = (s: ComposeService): string[] => (Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {}));
const aliasesOf = (s: ComposeService, network: string): string[] => (Array.isArray(s.networks) ? [] : s.networks?.[network]?.aliases ?? []);
/** The environment of a service as compose hands it to the process. */
const composeEnv = (s: ComposeService): Record<string, string> => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));

/** `${VAR:?message}` and `${VAR:-default}` as compose interpolates them, with a stand-in for required secrets. */
function interpolate(value: string): string {
  return value.replace(/\$\{(\w+)(?::([?-])([^}]*))?\}/g, (_, name: string, op?: string, rest?: string) => (op === '-' ? (rest ?? '') : `placeholder-${name.toLowerCase()}`));
}

/** The repository file a container path is bind-mounted from. */
function mountedFrom(service: ComposeService, target: string): string | undefined {
  for (const volume of service.volumes ?? []) {
    const [source, mountTarget] = volume.split(':');
    if (mountTarget === target && source.startsWith('.')) return path.join(deployDir, source);
  }
  return undefined;
}

const nginxConf = read('deploy', 'nginx.conf');
const prometheusConfig = parseYaml(read('deploy', 'prometheus.yml')) as {
  scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
};
const prometheusJobs = prometheusConfig.scrape_configs.map((c) => c.job_name).filter((j) => j.startsWith('switchboard-'));

describe('deploy/docker-compose.yml', () => {
  test('has Redis, three gateways, a worker, nginx, Prometheus and Grafana, built from deploy/Dockerfile', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['redis', 'nginx', 'prometheus', 'grafana', 'worker']));
    expect(gatewayServices).toHaveLength(3);
    expect(switchboardServices.map(([, s]) => s.command?.[0]).sort()).toEqual(['gateway', 'gateway', 'gateway', 'worker']);
    for (const [, service] of switchboardServices) {
      const build = service.build as { context: string; dockerfile: string };
      expect(existsSync(path.join(deployDir, build.context, build.dockerfile))).toBe(true);
      expect(path.resolve(deployDir, build.context)).toBe(root);
    }
  });

  test.each(['gateway1', 'gateway2', 'gateway3', 'worker'])('%s: every variable is a CLI setting and the CLI accepts them', (name) => {
    const service = services[name];
    const role = service.command?.[0] as Role;
    const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
    expect(Object.keys(env).filter((n) => !cliEnvNames.has(n) && !NODE_ENV_NAMES.has(n))).toEqual([]);
    const configFile = mountedFrom(service, env.SWITCHBOARD_CONFIG);
    expect(configFile && existsSync(configFile)).toBe(true);
    const config = runConfig(role, { ...env, SWITCHBOARD_CONFIG: configFile as string });
    expect(config.port).toBe(8000);
    expect(service.expose).toEqual([String(config.port)]);
    // Every switchboard process on the same Redis shard list, served by the compose Redis.
    expect(config.redis).toEqual(['redis://redis:6379']);
    // Docker SIGKILLs after stop_grace_period: it must outlast the drain.
    expect(secondsOf(service.stop_grace_period ?? '10s')).toBeGreaterThan(config.shutdownGraceMs / 1000);
    if (role === 'gateway') expect(config.nodeName).toBe(`gateway-${name.slice(-1)}`);
  });

  test('gateways and the worker agree on the number of document partitions', () => {
    const partitions = switchboardServices.map(([, s]) => {
      const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
      return runConfig(s.command?.[0] as Role, { ...env, SWITCHBOARD_CONFIG: '' }).docPartitions;
    });
    expect(new Set(partitions).size).toBe(1);
  });

  test('nginx balances WebSockets over exactly the gateways, on their ports, with upgrade headers and long timeouts', () => {
    expect(mountedFrom(services.nginx, '/etc/nginx/nginx.conf')).toBe(path.join(deployDir, 'nginx.conf'));
    const upstream = /upstream\s+(\w+)\s*\{([^}]*)\}/.exec(nginxConf);
    expect(upstream).not.toBeNull();
    const servers = [...(upstream as RegExpExecArray)[2].matchAll(/^\s*server\s+([\w.-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`);
    const expected = gatewayServices.map((name) => `${name}:${services[name].environment?.SWITCHBOARD_PORT}`);
    expect(servers.sort()).toEqual(expected.sort());
    expect(nginxConf).toContain(`proxy_pass http://${(upstream as RegExpExecArray)[1]};`);
    expect(nginxConf).toMatch(/proxy_http_version 1\.1;/);
    expect(nginxConf).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(nginxConf).toMatch(/proxy_set_header Connection \$connection_upgrade;/);
    expect(nginxConf).toMatch(/max_fails=\d+ fail_timeout=\d+s/);
    const readTimeout = /proxy_read_timeout\s+(\w+);/.exec(nginxConf)?.[1] ?? '60s';
    expect(secondsOf(readTimeout)).toBeGreaterThan(2 * PING_INTERVAL_SECONDS);
    // The published port reaches the port nginx listens on.
    const listen = /^\s*listen\s+(\d+);/m.exec(nginxConf)?.[1];
    expect((services.nginx.ports ?? []).map((p) => interpolate(p).split(':').at(-1))).toEqual([listen]);
  });

  test('Prometheus scrapes every gateway and the worker directly, under the job names the dashboard uses', () => {
    expect(mountedFrom(services.prometheus, '/etc/prometheus/prometheus.yml')).toBe(path.join(deployDir, 'prometheus.yml'));
    const targetsOf = (job: string): string[] =>
      prometheusConfig.scrape_configs.filter((c) => c.job_name === job).flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    const port = (name: string): string | undefined => services[name].environment?.SWITCHBOARD_PORT;
    expect(targetsOf('switchboard-gateway').sort()).toEqual(gatewayServices.map((g) => `${g}:${port(g)}`).sort());
    expect(targetsOf('switchboard-worker')).toEqual([`worker:${port('worker')}`]);
    // scripts/cluster.sh generates the same jobs for the local cluster.
    const script = read('scripts', 'cluster.sh');
    for (const job of prometheusJobs) expect(script).toContain(`job_name: ${job}`);
  });

  test('Grafana is provisioned with the Prometheus datasource and the dashboard', () => {
    const grafana = services.grafana;
    const provisioning = mountedFrom(grafana, '/etc/grafana/provisioning') as string;
    const datasources = parseYaml(readFileSync(path.join(provisioning, 'datasources', 'prometheus.yml'), 'utf8')) as {
      datasources: { type: string; url: string }[];
    };
    expect(datasources.datasources).toEqual([expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090' })]);
    const providers = parseYaml(readFileSync(path.join(provisioning, 'dashboards', 'switchboard.yml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    const dashboardsDir = mountedFrom(grafana, providers.providers[0].options.path) as string;
    expect(existsSync(path.join(dashboardsDir, 'switchboard.json'))).toBe(true);
  });
});

describe('deploy/docker-compose.yml default stack', () => {
  test('`docker compose up` starts what it always did: one Redis, three gateways, a worker, nginx, Prometheus, Grafana', () => {
    expect(Object.keys(services).sort()).toEqual(['gateway1', 'gateway2', 'gateway3', 'grafana', 'nginx', 'prometheus', 'redis', 'worker']);
    for (const [name, service] of Object.entries(services)) {
      // On compose's default network, depending on nothing a profile adds.
      expect([name, service.networks]).toEqual([name, undefined]);
      expect([name, dependencies(service).filter((d) => services[d] === undefined)]).toEqual([name, []]);
    }
  });

  test('every $ is compose interpolation (${...}) or an escaped $$: compose would read $(...) as a variable', () => {
    expect(composeText.replace(/\$\$/g, '').match(/\$(?!\{)/g)).toBeNull();
  });
});

/** The Kubernetes component whose scripts a compose profile runs. */
const componentOfProfile: Record<string, string> = { cluster: 'components/redis-cluster', sentinel: 'components/redis-sentinel' };

describe.each(profiles)('deploy/docker-compose.yml profile %s', (profile) => {
  const stack = Object.entries(allServices).filter(([, s]) => s.profiles !== undefined && s.profiles.includes(profile));
  const names = stack.map(([name]) => name);
  const ofRole = (role: string): [string, ComposeService][] => stack.filter(([, s]) => s.image === 'switchboard:local' && s.command?.[0] === role);
  const gateways = ofRole('gateway');
  const workers = ofRole('worker');
  const balancers = stack.filter(([, s]) => s.image?.startsWith('nginx:'));
  /** Redis members: the services that run one of the component's scripts. */
  const members = stack.filter(([, s]) => s.command?.[0] === 'sh');
  const scriptOf = (s: ComposeService): string => path.basename(s.command?.[1] ?? '');
  /** The port a member listens on, as its script reads the environment. */
  const listensOn = (s: ComposeService): number =>
    s.command?.[2] === 'sentinel' ? Number(composeEnv(s).SENTINEL_PORT ?? 26379) : Number(composeEnv(s).REDIS_PORT ?? 6379);

  test('a stack of its own: its services in this profile only, on its own network only, depending only on each other', () => {
    expect(stack.length).toBeGreaterThan(0);
    for (const [name, service] of stack) {
      expect([name, service.profiles]).toEqual([name, [profile]]);
      expect([name, networksOf(service)]).toEqual([name, [profile]]);
      expect([name, dependencies(service).filter((d) => !names.includes(d))]).toEqual([name, []]);
    }
    expect(Object.keys(compose.networks ?? {})).toContain(profile);
    // Named volumes it mounts are declared (compose creates them only for services it starts).
    const volumes = stack.flatMap(([, s]) => s.volumes ?? []).map((v) => v.split(':')[0]).filter((v) => !v.startsWith('.'));
    for (const volume of volumes) expect(Object.keys(compose.volumes ?? {})).toContain(volume);
  });

  test('three gateways and a worker answer there to the default names, so its nginx runs the same nginx.conf on a port of its own', () => {
    expect(gateways).toHaveLength(3);
    expect(workers).toHaveLength(1);
    expect(balancers).toHaveLength(1);
    const upstream = /upstream\s+\w+\s*\{([^}]*)\}/.exec(nginxConf) as RegExpExecArray;
    const servers = [...upstream[1].matchAll(/^\s*server\s+([\w.-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`);
    const answering = gateways.map(([, s]) => `${aliasesOf(s, profile).join(',')}:${s.environment?.SWITCHBOARD_PORT}`);
    expect(answering.sort()).toEqual(servers.sort());
    expect(aliasesOf(workers[0][1], profile)).toEqual(['worker']);
    const [, nginx] = balancers[0];
    expect(mountedFrom(nginx, '/etc/nginx/nginx.conf')).toBe(path.join(deployDir, 'nginx.conf'));
    expect(dependencies(nginx).sort()).toEqual(gateways.map(([name]) => name).sort());
    const published = Object.values(allServices)
      .filter((s) => s.image?.startsWith('nginx:'))
      .map((s) => (s.ports ?? []).map((p) => interpolate(p).split(':')[0]).join());
    expect(new Set(published).size).toBe(published.length);
  });

  test('gateways and the worker: every variable is a CLI setting, the CLI accepts them, all on one Redis address', () => {
    const configs = [...gateways, ...workers].map(([name, service]) => {
      const env = composeEnv(service);
      expect([name, Object.keys(env).filter((n) => !cliEnvNames.has(n) && !NODE_ENV_NAMES.has(n))]).toEqual([name, []]);
      const configFile = mountedFrom(service, env.SWITCHBOARD_CONFIG) as string;
      expect(existsSync(configFile)).toBe(true);
      const config = runConfig(service.command?.[0] as Role, { ...env, SWITCHBOARD_CONFIG: configFile });
      expect(secondsOf(service.stop_grace_period ?? '10s')).toBeGreaterThan(config.shutdownGraceMs / 1000);
      return config;
    });
    expect(new Set(configs.map((c) => c.redis.join(','))).size).toBe(1);
    expect(new Set(configs.map((c) => c.docPartitions)).size).toBe(1);
    expect(new Set(configs.map((c) => c.nodeName)).size).toBe(configs.length);
    // Replication is asynchronous: the worker acknowledges document updates once a replica has them.
    expect(configs.at(-1)?.docWaitReplicas).toBe(1);
  });

  test('the Redis address parses as the engine parses it and names members of this stack on the ports they listen on', () => {
    const url = composeEnv(gateways[0][1]).SWITCHBOARD_REDIS_URL;
    const address = parseRedisAddress(url);
    const named =
      address.kind === 'cluster'
        ? address.cluster.seeds
        : address.shards.flatMap((shard) => shard.connection.sentinels ?? [{ host: shard.connection.host, port: shard.connection.port }]);
    expect(named.length).toBeGreaterThan(0);
    for (const { host, port } of named) {
      const member = members.find(([name]) => name === host);
      expect([host, member !== undefined && listensOn(member[1])]).toEqual([host, port]);
      if (address.kind === 'cluster') expect(scriptOf(member?.[1] ?? {})).toBe('redis-cluster-node.sh');
      else {
        expect(member?.[1].command?.[2]).toBe('sentinel');
        expect(composeEnv(member?.[1] ?? {}).SENTINEL_MASTER_NAME).toBe(address.kind === 'shards' ? address.shards[0].connection.name : '');
      }
    }
    expect(address.kind).toBe(profile === 'cluster' ? 'cluster' : 'shards');
  });

  test('the Redis members run the Kubernetes component\'s scripts, announce their service names and list each other by them', () => {
    const component = readKustomization(path.join(k8sRoot, componentOfProfile[profile]));
    const componentFiles = (component.configMapGenerator ?? []).flatMap((g) => g.files).map((f) => path.join(k8sRoot, componentOfProfile[profile], f));
    expect(members.length).toBeGreaterThan(0);
    for (const [name, service] of members) {
      const script = mountedFrom(service, service.command?.[1] ?? '') as string;
      expect([name, componentFiles]).toEqual([name, expect.arrayContaining([script])]);
      const env = composeEnv(service);
      const text = readFileSync(script, 'utf8');
      expect([name, Object.keys(env).filter((n) => !text.includes(n))]).toEqual([name, []]);
      const own = env.REDIS_CLUSTER_HOSTNAME ?? env.REDIS_HOST;
      if (scriptOf(service) !== 'redis-cluster-bootstrap.sh') expect([name, own]).toEqual([name, name]);
      for (const list of MEMBER_LISTS.filter((l) => env[l] !== undefined)) {
        for (const { host, port } of hostPorts(env[list])) {
          const listed = members.find(([n]) => n === host);
          expect([name, list, host, listed !== undefined && listensOn(listed[1])]).toEqual([name, list, host, port]);
        }
      }
    }
    if (profile === 'cluster') {
      const init = members.find(([, s]) => scriptOf(s) === 'redis-cluster-bootstrap.sh') as [string, ComposeService];
      const nodes = members.filter(([, s]) => scriptOf(s) === 'redis-cluster-node.sh').map(([n]) => n);
      expect(hostPorts(composeEnv(init[1]).REDIS_CLUSTER_NODES).map((n) => n.host)).toEqual(nodes);
      expect(nodes).toHaveLength(6);
      // Gateways and the worker start once the cluster is formed.
      for (const [, s] of [...gateways, ...workers]) expect((s.depends_on as Record<string, { condition: string }>)[init[0]]).toEqual({ condition: 'service_completed_successfully' });
    } else {
      const data = members.filter(([, s]) => s.command?.[2] === 'redis').map(([n]) => n);
      const sentinels = members.filter(([, s]) => s.command?.[2] === 'sentinel').map(([n]) => n);
      expect([data.length, sentinels.length]).toEqual([3, 3]);
      for (const [, s] of members) {
        expect(hostPorts(composeEnv(s).REDIS_NODES).map((n) => n.host)).toEqual(data);
        expect(hostPorts(composeEnv(s).REDIS_SENTINELS).map((n) => n.host)).toEqual(sentinels);
      }
    }
  });
});

describe('deploy/grafana dashboard', () => {
  const dashboard = JSON.parse(read('deploy', 'grafana', 'dashboards', 'switchboard.json')) as {
    uid: string;
    panels: { type: string; title: string; targets?: { expr: string }[] }[];
  };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  const metricNames = new Set(exprs.flatMap((e) => e.match(/\bswitchboard_[a-z0-9_]+/g) ?? []));

  test('shows the metrics operators need', () => {
    for (const metric of [
      'switchboard_connections',
      'switchboard_deliveries_total',
      'switchboard_publications_total',
      'switchboard_fanout_seconds_bucket',
      'switchboard_engine_seconds_bucket',
      'switchboard_recoveries_total',
      'switchboard_slow_disconnects_total',
      'switchboard_doc_updates_total',
      'switchboard_doc_commit_seconds_bucket',
      'switchboard_worker_partitions_owned',
    ]) {
      expect(metricNames).toContain(metric);
    }
  });

  test('filters on the Prometheus job names that exist', () => {
    const jobs = new Set(exprs.flatMap((e) => [...e.matchAll(/job="([^"]+)"/g)].map((m) => m[1])));
    expect([...jobs].filter((j) => !prometheusJobs.includes(j))).toEqual([]);
  });

  test('every metric it queries is one the gateways or workers define', () => {
    // Metric names as written in the sources (prom-client definitions), plus prom-client's default process
    // metrics, which the gateway registers with the switchboard_ prefix.
    const sources = ['gateway', 'worker']
      .map((pkg) => path.join(root, 'packages', pkg, 'src'))
      .filter((dir) => existsSync(dir))
      .flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).map((f) => readFileSync(path.join(dir, f), 'utf8')))
      .join('\n');
    const defined = new Set(sources.match(/\bswitchboard_[a-z0-9_]+/g) ?? []);
    const defaultMetrics = /collectDefaultMetrics\([^)]*prefix: 'switchboard_'/.test(sources);
    const base = (name: string): string => name.replace(/_(bucket|sum|count)$/, '');
    const missing = [...metricNames].filter((name) => {
      if (defined.has(name) || defined.has(base(name))) return false;
      return !(defaultMetrics && /^switchboard_(process|nodejs)_/.test(name));
    });
    expect(missing).toEqual([]);
  });
});

// ---- The Redis components' scripts, run on real redis-server processes ------------------------------------------

/** redis-cli against one server; its output without carriage returns. */
function redisCli(host: string, port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', host, '-p', String(port), ...args], { timeout: 5000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli -h ${host} -p ${port} ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout.replace(/\r/g, '').trim());
    });
  });
}

/** One of the scripts as a container runs it: `sh <script> <args>`, with the given environment. */
class ScriptProcess {
  readonly child: ChildProcess;
  private output = '';

  constructor(script: string, args: string[], env: Record<string, string>) {
    this.child = spawn('sh', [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-16384);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    started.add(this.child);
    this.child.once('exit', () => started.delete(this.child));
  }

  get log(): string {
    return this.output;
  }

  /** Resolves with the exit code and everything the script printed. */
  finished(): Promise<{ code: number | null; log: string }> {
    if (this.child.exitCode !== null) return Promise.resolve({ code: this.child.exitCode, log: this.output });
    return new Promise((resolve) => this.child.once('exit', (code) => resolve({ code, log: this.output })));
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await stopRedisProcess(this.child, signal);
  }
}

const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of started) child.kill('SIGKILL');
});

/** A Redis server started through a script: where it listens, once it answers PING. */
async function answering(proc: ScriptProcess, host: string, port: number): Promise<void> {
  await waitUntilSettled(
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`exited with ${proc.child.exitCode}:\n${proc.log}`);
      return (await redisCli(host, port, 'PING')) === 'PONG' ? undefined : 'no PONG';
    },
    { timeoutMs: 10000, message: `redis on ${host}:${port} did not answer` },
  );
}

/** A script as the component's ConfigMap holds it, written to `dir`. */
function scriptFromConfigMap(variant: Variant, configMap: string, key: string, dir: string): string {
  const text = variant.find<{ data: Record<string, string> }>('ConfigMap', configMap).data[key];
  const file = path.join(dir, key);
  writeFileSync(file, text);
  return file;
}

/** The container's arguments and environment as the manifest has them (pod 0). */
function containerSpec(variant: Variant, workload: string, container: string): { args: string[]; env: Record<string, string> } {
  const w = variant.workload(variant.workloads.find((x) => x.name === workload)?.kind ?? '', workload);
  const c = w.spec.containers.find((x) => x.name === container) as IContainer;
  return { args: c.args ?? [], env: variant.env(c, `${workload}-0`) };
}

/** One line of CLUSTER NODES. */
interface ClusterNode {
  id: string;
  address: string;
  flags: string[];
  primary?: string;
  slots: string[];
}

async function clusterNodes(host: string, port: number): Promise<ClusterNode[]> {
  return (await redisCli(host, port, 'CLUSTER', 'NODES'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const f = line.split(' ');
      return { id: f[0], address: f[1], flags: f[2].split(','), primary: f[3] === '-' ? undefined : f[3], slots: f.slice(8) };
    });
}

/** Roles and slots by node id, in a form two moments can be compared in. */
function clusterPicture(nodes: ClusterNode[]): string {
  return nodes
    .map((n) => `${n.id}:${n.flags.includes('master') ? `primary[${n.slots.join(' ')}]` : `replica-of-${n.primary}`}`)
    .sort()
    .join(' ');
}

const slotCount = (slots: string[]): number =>
  slots.reduce((sum, range) => {
    const [from, to] = range.split('-').map(Number);
    return sum + (to ?? from) - from + 1;
  }, 0);

describe('k8s/components/redis-cluster scripts, on six real redis-server processes', () => {
  const variant = rendered.get('overlays/redis-cluster') as Variant;
  const node = containerSpec(variant, 'switchboard-redis-cluster', 'redis');
  const job = containerSpec(variant, 'switchboard-redis-cluster-bootstrap', 'bootstrap');
  let dir = '';
  let nodeScript = '';
  let bootstrapScript = '';
  const ports: { port: number; bus: number }[] = [];
  const processes: (ScriptProcess | undefined)[] = [];
  /** Where each node's stable name resolves now: what the pod DNS does in Kubernetes (a stand-in `getent` reads it). */
  const addresses = new Map<string, string>();
  const hostname = (i: number): string => `node-${i}.redis-cluster.test`;
  const ipOf = (i: number): string => addresses.get(hostname(i)) as string;

  function writeHosts(): void {
    writeFileSync(path.join(dir, 'hosts'), [...addresses].map(([name, ip]) => `${ip} ${name}\n`).join(''));
  }

  const environment = (): Record<string, string> => ({ PATH: `${path.join(dir, 'bin')}${path.delimiter}${process.env.PATH ?? ''}`, FAKE_HOSTS: path.join(dir, 'hosts') });

  /** Node i as the StatefulSet runs it (same script, same arguments), on its own loopback IP, faster to fail over. */
  async function startNode(i: number, ip: string): Promise<void> {
    addresses.set(hostname(i), ip);
    writeHosts();
    const proc = new ScriptProcess(nodeScript, [...node.args, '--bind', ip, '--cluster-node-timeout', '2000', '--repl-diskless-sync-delay', '0'], {
      ...environment(),
      REDIS_CLUSTER_HOSTNAME: hostname(i),
      REDIS_CLUSTER_ANNOUNCE_IP: ip,
      REDIS_PORT: String(ports[i].port),
      REDIS_CLUSTER_BUS_PORT: String(ports[i].bus),
      REDIS_DATA_DIR: path.join(dir, `node-${i}`),
    });
    processes[i] = proc;
    await answering(proc, ip, ports[i].port);
  }

  /** The bootstrap Job's script with the Job's settings, listing the nodes by name. */
  async function bootstrap(extraNodes: string[] = []): Promise<{ code: number | null; log: string }> {
    const list = [...ports.map((p, i) => `${hostname(i)}:${p.port}`), ...extraNodes].join(' ');
    return new ScriptProcess(bootstrapScript, [], { ...environment(), REDIS_CLUSTER_NODES: list, REDIS_CLUSTER_REPLICAS: job.env.REDIS_CLUSTER_REPLICAS, REDIS_CLUSTER_TIMEOUT: '20' }).finished();
  }

  const live = (): number[] => processes.flatMap((p, i) => (p && p.child.exitCode === null && p.child.signalCode === null ? [i] : []));

  /** Why the live nodes do not agree yet on one healthy cluster of themselves, or undefined once they do. */
  async function unsettled(): Promise<string | undefined> {
    let agreed: string | undefined;
    const liveAddresses = live().map((i) => `${ipOf(i)}:${ports[i].port}`);
    for (const i of live()) {
      const info = await redisCli(ipOf(i), ports[i].port, 'CLUSTER', 'INFO');
      if (!/cluster_state:ok/.test(info)) return `node ${i}: ${/cluster_state:\w+/.exec(info)?.[0]}`;
      // A killed node stays in every view until forgotten: only the live ones count.
      const nodes = (await clusterNodes(ipOf(i), ports[i].port)).filter((n) => liveAddresses.includes(n.address.split('@')[0]));
      if (nodes.length !== liveAddresses.length) return `node ${i} knows ${nodes.length} of the ${liveAddresses.length} live nodes at their addresses`;
      const odd = nodes.find((n) => n.flags.some((f) => ['fail', 'fail?', 'handshake', 'noaddr'].includes(f)) || (n.flags.includes('master') && n.slots.length === 0));
      if (odd) return `node ${i} sees ${odd.address} as ${odd.flags.join(',')}`;
      const picture = clusterPicture(nodes);
      if (agreed !== undefined && picture !== agreed) return `nodes disagree: ${agreed} vs ${picture}`;
      agreed = picture;
    }
    return undefined;
  }

  // Redis's own failover (an election among the primaries, retried every 2 × node timeout) can take several rounds
  // when the whole test suite shares two cores: the waits allow for that.
  const SETTLE_MS = 30000;

  async function picture(): Promise<string> {
    await waitUntilSettled(unsettled, { timeoutMs: SETTLE_MS, message: 'the cluster did not settle' });
    const i = live()[0];
    return clusterPicture(await clusterNodes(ipOf(i), ports[i].port));
  }

  /** Keys on every primary (one per slot range), through redirects as a cluster client follows them. */
  const keys = ['{a}', '{b}', '{c}', '{d}', '{e}', '{f}'].map((tag) => `switchboard:test:${tag}`);
  const anyNode = (): [string, number] => {
    const i = live()[0];
    return [ipOf(i), ports[i].port];
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'redis-cluster-scripts-'));
    mkdirSync(path.join(dir, 'bin'));
    // A `getent hosts NAME` that answers from the hosts file above, as the cluster's DNS would.
    writeFileSync(path.join(dir, 'bin', 'getent'), '#!/bin/sh\n[ "$1" = hosts ] || exit 2\nawk -v n="$2" \'$2 == n { print; found = 1; exit } END { exit !found }\' "$FAKE_HOSTS"\n', { mode: 0o755 });
    nodeScript = scriptFromConfigMap(variant, 'switchboard-redis-cluster-scripts', 'redis-cluster-node.sh', dir);
    bootstrapScript = scriptFromConfigMap(variant, 'switchboard-redis-cluster-scripts', 'redis-cluster-bootstrap.sh', dir);
    for (let i = 0; i < 6; i++) {
      mkdirSync(path.join(dir, `node-${i}`));
      ports.push({ port: await freePort(), bus: await freePort() });
    }
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p?.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the Job runs it once all six answer: three primaries with every slot, each with one replica', async () => {
    await Promise.all(ports.map((_, i) => startNode(i, `127.77.1.${i + 1}`)));
    const { code, log } = await bootstrap();
    expect([code, log]).toEqual([0, expect.stringContaining('creating a cluster')]);
    const nodes = await clusterNodes(...anyNode());
    const primaries = nodes.filter((n) => n.flags.includes('master'));
    expect(primaries).toHaveLength(3);
    expect(primaries.reduce((sum, p) => sum + slotCount(p.slots), 0)).toBe(16384);
    expect(nodes.filter((n) => n.flags.includes('slave')).map((n) => n.primary).sort()).toEqual(primaries.map((p) => p.id).sort());
    // Every node knows every other by its stable name: what the next start re-resolves.
    for (let i = 0; i < 6; i++) expect(nodes.map((n) => n.address)).toContainEqual(expect.stringMatching(new RegExp(`,${hostname(i).replace(/\./g, '\\.')}$`)));
    for (const key of keys) expect(await redisCli(...anyNode(), '-c', 'SET', key, `value of ${key}`)).toBe('OK');
  }, 30000);

  test('run again, it changes nothing', async () => {
    const before = await picture();
    const { code, log } = await bootstrap();
    expect([code, log]).toEqual([0, expect.stringContaining('nothing to add')]);
    expect(await picture()).toBe(before);
  }, 70000);

  test('all six restarted on new IPs, half of them before the others resolve: the same cluster re-forms, data kept', async () => {
    const before = await picture();
    await Promise.all(processes.map((p) => p?.stop()));
    addresses.clear();
    await Promise.all([0, 1, 2].map((i) => startNode(i, `127.77.2.${i + 1}`)));
    await Promise.all([3, 4, 5].map((i) => startNode(i, `127.77.2.${i + 1}`)));
    const { code, log } = await bootstrap();
    expect([code, log]).toEqual([0, expect.stringContaining('nothing to add')]);
    expect(await picture()).toBe(before);
    for (const key of keys) expect(await redisCli(...anyNode(), '-c', 'GET', key)).toBe(`value of ${key}`);
    // Without the start script's rewrite of nodes.conf no node reaches another (tried: cluster_state:fail for good).
    expect(processes[5]?.log).toContain('moved from 127.77.1.');
  }, 70000);

  test('a primary that comes back empty (a lost volume) rejoins as a replica; the node it replaces is forgotten', async () => {
    const nodes = await clusterNodes(...anyNode());
    const victim = [0, 1, 2, 3, 4, 5].find((i) => nodes.find((n) => n.address.startsWith(`${ipOf(i)}:`))?.flags.includes('master')) as number;
    const oldId = (nodes.find((n) => n.address.startsWith(`${ipOf(victim)}:`)) as ClusterNode).id;
    const replicaId = nodes.find((n) => n.primary === oldId)?.id;
    expect(replicaId).toBeDefined();
    await processes[victim]?.stop('SIGKILL');
    processes[victim] = undefined;
    // Every other node has marked it failed, and its replica has taken its slots over.
    await waitUntilSettled(
      async () => {
        for (const i of live()) {
          const seen = await clusterNodes(ipOf(i), ports[i].port);
          const failed = seen.find((n) => n.id === oldId);
          if (!failed?.flags.includes('fail')) return `node ${i} sees ${oldId} as ${failed?.flags.join(',')}`;
          const promoted = seen.find((n) => n.id === replicaId);
          if (!promoted?.flags.includes('master')) return `node ${i} sees the replica ${replicaId} as ${promoted?.flags.join(',')}`;
        }
        return undefined;
      },
      { timeoutMs: SETTLE_MS, message: `primary ${oldId} was not failed over` },
    );
    await picture();
    rmSync(path.join(dir, `node-${victim}`), { recursive: true });
    mkdirSync(path.join(dir, `node-${victim}`));
    await startNode(victim, '127.77.3.1');
    const { code, log } = await bootstrap();
    expect([code, log]).toEqual([0, expect.stringContaining(`forgetting failed node ${oldId}`)]);
    expect(log).toContain(`adding empty node 127.77.3.1:${ports[victim].port} as a replica`);
    await picture();
    const after = await clusterNodes(...anyNode());
    expect(after).toHaveLength(6);
    expect(after.map((n) => n.id)).not.toContain(oldId);
    expect(after.find((n) => n.address.startsWith('127.77.3.1:'))?.flags).toContain('slave');
    for (const key of keys) expect(await redisCli(...anyNode(), '-c', 'GET', key)).toBe(`value of ${key}`);
  }, 90000);

  test('refuses, changing nothing, a node that is neither empty nor in the cluster', async () => {
    const before = await picture();
    const port = await freePort();
    mkdirSync(path.join(dir, 'stray'));
    const stray = new ScriptProcess(nodeScript, [...node.args, '--bind', '127.77.4.1'], {
      ...environment(),
      REDIS_CLUSTER_HOSTNAME: 'stray.redis-cluster.test',
      REDIS_PORT: String(port),
      REDIS_CLUSTER_BUS_PORT: String(await freePort()),
      REDIS_DATA_DIR: path.join(dir, 'stray'),
    });
    try {
      await answering(stray, '127.77.4.1', port);
      await redisCli('127.77.4.1', port, 'CLUSTER', 'ADDSLOTS', '7');
      const { code, log } = await bootstrap([`127.77.4.1:${port}`]);
      expect([code, log]).toEqual([1, expect.stringContaining('left as found')]);
      expect(await picture()).toBe(before);
    } finally {
      await stray.stop();
    }
  }, 70000);
});

describe('k8s/components/redis-sentinel script, on real redis-server processes (3 data nodes, 3 sentinels)', () => {
  const variant = rendered.get('overlays/redis-sentinel') as Variant;
  const data = containerSpec(variant, 'switchboard-redis-sentinel', 'redis');
  const sentinel = containerSpec(variant, 'switchboard-redis-sentinel', 'sentinel');
  const master = data.env.SENTINEL_MASTER_NAME;
  const host = '127.0.0.1';
  let dir = '';
  let script = '';
  const dataPorts: number[] = [];
  const sentinelPorts: number[] = [];
  let members: ScriptProcess[] = [];

  /** Pod i: its data node and its sentinel, sharing the pod's volume as in the StatefulSet. */
  const podEnv = (i: number): Record<string, string> => ({
    REDIS_HOST: host,
    REDIS_NODES: dataPorts.map((p) => `${host}:${p}`).join(' '),
    REDIS_SENTINELS: sentinelPorts.map((p) => `${host}:${p}`).join(' '),
    SENTINEL_MASTER_NAME: master,
    SENTINEL_QUORUM: sentinel.env.SENTINEL_QUORUM,
    SENTINEL_DOWN_AFTER_MS: '2000',
    SENTINEL_FAILOVER_TIMEOUT_MS: '5000',
    REDIS_DATA_DIR: path.join(dir, `pod-${i}`),
    REDIS_PORT: String(dataPorts[i]),
    SENTINEL_PORT: String(sentinelPorts[i]),
  });

  /** Every pod at once, as the StatefulSet starts them (Parallel). */
  async function startAll(): Promise<void> {
    members = [0, 1, 2].flatMap((i) => [
      new ScriptProcess(script, ['sentinel', ...sentinel.args, '--bind', host], podEnv(i)),
      new ScriptProcess(script, ['redis', ...data.args, '--bind', host, '--repl-diskless-sync-delay', '0'], podEnv(i)),
    ]);
    await Promise.all([0, 1, 2].flatMap((i) => [answering(members[2 * i], host, sentinelPorts[i]), answering(members[2 * i + 1], host, dataPorts[i])]));
  }

  /** Resolves once every sentinel names `primary`, knows two replicas and two sentinels, and both replicas are linked to it. */
  async function settledOn(primary: number): Promise<void> {
    await waitUntilSettled(
      async () => {
        for (const port of sentinelPorts) {
          const reply = (await redisCli(host, port, 'SENTINEL', 'MASTER', master)).split('\n');
          const field = (name: string): string => reply[reply.indexOf(name) + 1];
          if (`${field('ip')}:${field('port')}` !== `${host}:${primary}`) return `sentinel ${port} names ${field('ip')}:${field('port')}`;
          if (field('num-slaves') !== '2' || field('num-other-sentinels') !== '2') return `sentinel ${port} knows ${field('num-slaves')} replicas, ${field('num-other-sentinels')} sentinels`;
        }
        for (const port of dataPorts) {
          const replication = await redisCli(host, port, 'INFO', 'replication');
          if (port === primary && !/role:master/.test(replication)) return `${port} is not the primary`;
          if (port !== primary && !(new RegExp(`master_port:${primary}\\b`).test(replication) && /master_link_status:up/.test(replication))) return `${port} is not a synced replica of ${primary}`;
        }
        return undefined;
      },
      { timeoutMs: 20000, message: `the set did not settle on ${primary}` },
    );
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'redis-sentinel-script-'));
    script = scriptFromConfigMap(variant, 'switchboard-redis-sentinel-scripts', 'redis-sentinel.sh', dir);
    for (let i = 0; i < 3; i++) {
      mkdirSync(path.join(dir, `pod-${i}`));
      dataPorts.push(await freePort());
      sentinelPorts.push(await freePort());
    }
  });

  afterAll(async () => {
    await Promise.all(members.map((m) => m.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a new set: the first data node is the primary, the others its replicas, every sentinel watches it', async () => {
    await startAll();
    await settledOn(dataPorts[0]);
    expect(members[3].log).toContain(`starting as a replica of ${host}:${dataPorts[0]}`);
  }, 30000);

  test('after a failover and a restart of every pod, the primary stays where the failover put it, data kept', async () => {
    const old = dataPorts[0];
    expect(await redisCli(host, old, 'SET', 'switchboard:test', 'kept')).toBe('OK');
    expect(await redisCli(host, old, 'WAIT', '2', '5000')).toBe('2');
    await waitUntilSettled(async () => ((await redisCli(host, sentinelPorts[0], 'SENTINEL', 'FAILOVER', master)) === 'OK' ? undefined : 'failover refused'), {
      timeoutMs: 10000,
      message: 'SENTINEL FAILOVER was refused',
    });
    let promoted = old;
    await waitUntilSettled(
      async () => {
        for (const [i, port] of sentinelPorts.entries()) {
          const [ip, p] = (await redisCli(host, port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', master)).split('\n');
          if (`${ip}:${p}` === `${host}:${old}`) return `sentinel ${port} still names ${old}`;
          promoted = Number(p);
          // What a restarted sentinel starts from.
          if (!readFileSync(path.join(dir, `pod-${i}`, 'sentinel.conf'), 'utf8').includes(`sentinel monitor ${master} ${host} ${p} `)) return `sentinel ${port} has not saved the switch`;
        }
        return undefined;
      },
      { timeoutMs: 15000, message: 'the failover did not reach every sentinel' },
    );
    await Promise.all(members.map((m) => m.stop()));
    await startAll();
    await settledOn(promoted);
    expect(members[1].log).toContain(`starting as a replica of ${host}:${promoted}`);
    expect(await redisCli(host, promoted, 'GET', 'switchboard:test')).toBe('kept');
  }, 30000);

  test('with no sentinel answering, the first of REDIS_NODES starts as the primary', async () => {
    const alone = await freePort();
    mkdirSync(path.join(dir, 'alone'));
    const env = { ...podEnv(0), REDIS_NODES: `${host}:${alone} ${host}:${dataPorts[0]}`, REDIS_SENTINELS: `${host}:${await freePort()}`, SENTINEL_WAIT_SECONDS: '1', REDIS_DATA_DIR: path.join(dir, 'alone') };
    const first = new ScriptProcess(script, ['redis', '--bind', host, '--save', ''], { ...env, REDIS_PORT: String(alone) });
    try {
      await answering(first, host, alone);
      expect(first.log).toContain(`no sentinel answered; ${host}:${alone} is the primary`);
      expect(await redisCli(host, alone, 'ROLE')).toMatch(/^master/);
    } finally {
      await first.stop();
    }
  });
});
