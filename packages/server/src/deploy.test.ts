// Checks deploy/ and k8s/ against the Kubernetes schemas and against the CLI they run: ports, probes, env names, drain timing.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { Deployment, StatefulSet, type IDeployment, type IStatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress, NetworkPolicy, type IIngress } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service, ServiceAccount, type IContainer, type IPodSpec, type ISecret, type IService } from 'kubernetes-models/v1';
import { ServiceMonitor, type IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { loadConfig, roles, usage, type Config, type Role } from './config';
import { parseConfigFile } from './config-file';

const root = path.resolve(__dirname, '..', '..', '..');
const k8sDir = path.join(root, 'k8s', 'base');
const deployDir = path.join(root, 'deploy');
const read = (...parts: string[]): string => readFileSync(path.join(root, ...parts), 'utf8');

/** The environment variables the CLI reads, straight from its --help table. */
const cliEnvNames = new Set(usage().match(/SWITCHBOARD_[A-Z_]+/g) ?? []);
/** The CLI's defaults, as a gateway started with no settings sees them. */
const cliDefaults = runConfig('gateway', { SWITCHBOARD_REDIS_URL: 'redis://127.0.0.1:1' });
/** The server sends a ping every 25 s (PROTOCOL.md); a proxy read timeout must outlast the gap between two. */
const PING_INTERVAL_SECONDS = 25;

function runConfig(role: Role, env: Record<string, string>): Config {
  const loaded = loadConfig([role], env);
  if (loaded.action !== 'run') throw new Error(`expected a runnable config, got ${loaded.action}`);
  return loaded.config;
}

// ---- Kubernetes ------------------------------------------------------------------------------------------------

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

interface LoadedManifest {
  file: string;
  index: number;
  manifest: Manifest;
}

interface Kustomization {
  resources: string[];
  configMapGenerator?: { name: string; files: string[] }[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

const kustomization = parseYaml(read('k8s', 'base', 'kustomization.yaml')) as Kustomization;

function loadManifests(): LoadedManifest[] {
  const loaded: LoadedManifest[] = [];
  for (const file of kustomization.resources) {
    const docs = parseAllDocuments(readFileSync(path.join(k8sDir, file), 'utf8'));
    docs.forEach((doc, index) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
      const manifest = doc.toJS() as Manifest | null;
      if (manifest) loaded.push({ file, index, manifest });
    });
  }
  // What kustomize's configMapGenerator produces (the name gets a content hash suffix, references follow it).
  for (const generator of kustomization.configMapGenerator ?? []) {
    const data = Object.fromEntries(generator.files.map((f) => [path.basename(f), readFileSync(path.join(k8sDir, f), 'utf8')]));
    loaded.push({ file: 'kustomization.yaml', index: 0, manifest: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: generator.name }, data } });
  }
  return loaded;
}

const manifests = loadManifests();

function find<T>(kind: string, name: string): T {
  const found = manifests.find((m) => m.manifest.kind === kind && m.manifest.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in k8s/base`);
  return found.manifest as unknown as T;
}

/** Model classes of kubernetes-models: each validates with the Kubernetes JSON schema of its kind (compiled by ajv). */
const models: Record<string, (data: unknown) => { validate(): void }> = {
  'apps/v1/Deployment': (d) => new Deployment(d as IDeployment),
  'apps/v1/StatefulSet': (d) => new StatefulSet(d as IStatefulSet),
  'autoscaling/v2/HorizontalPodAutoscaler': (d) => new HorizontalPodAutoscaler(d as IHorizontalPodAutoscaler),
  'networking.k8s.io/v1/Ingress': (d) => new Ingress(d as IIngress),
  'networking.k8s.io/v1/NetworkPolicy': (d) => new NetworkPolicy(d as never),
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

interface PodTemplateOwner {
  name: string;
  spec: IPodSpec;
  labels: Record<string, string>;
}

function podTemplate(kind: 'Deployment' | 'StatefulSet', name: string): PodTemplateOwner {
  const owner = find<IDeployment | IStatefulSet>(kind, name);
  const template = owner.spec?.template;
  if (!template?.spec) throw new Error(`${kind} ${name} has no pod template`);
  return { name, spec: template.spec, labels: (template.metadata?.labels ?? {}) as Record<string, string> };
}

function onlyContainer(spec: IPodSpec): IContainer {
  if (spec.containers.length !== 1) throw new Error(`expected one container, got ${spec.containers.length}`);
  return spec.containers[0];
}

/** The container's environment as the process sees it: secrets from the Secret manifest, the pod name for fieldRefs. */
function resolvedEnv(container: IContainer, podName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const secretRef = variable.valueFrom?.secretKeyRef;
    if (variable.value !== undefined) env[variable.name] = variable.value;
    else if (secretRef) {
      const secret = find<ISecret>('Secret', secretRef.name ?? '');
      const value = secret.stringData?.[secretRef.key];
      if (value === undefined) throw new Error(`${variable.name}: Secret ${secretRef.name} has no key ${secretRef.key}`);
      env[variable.name] = value;
    } else if (variable.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[variable.name] = podName;
    else throw new Error(`${variable.name}: unsupported value source`);
  }
  return env;
}

/** Maps SWITCHBOARD_CONFIG's in-pod path to the repository file the ConfigMap mounted there is generated from. */
function configFileOnDisk(spec: IPodSpec, container: IContainer, inPodPath: string): string {
  const mount = (container.volumeMounts ?? []).find((m) => inPodPath.startsWith(`${m.mountPath}/`));
  if (!mount) throw new Error(`SWITCHBOARD_CONFIG ${inPodPath} is not under any volume mount of ${container.name}`);
  const volume = (spec.volumes ?? []).find((v) => v.name === mount.name);
  const configMapName = volume?.configMap?.name;
  const generator = (kustomization.configMapGenerator ?? []).find((g) => g.name === configMapName);
  if (!generator) throw new Error(`volume ${mount.name} is not the generated ConfigMap`);
  const fileName = path.relative(mount.mountPath, inPodPath);
  const file = generator.files.find((f) => path.basename(f) === fileName);
  if (!file) throw new Error(`ConfigMap ${configMapName} has no key ${fileName}`);
  return path.join(k8sDir, file);
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

describe('k8s/base', () => {
  test('kustomization.yaml lists every manifest in the directory, and only existing ones', () => {
    const onDisk = readdirSync(k8sDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    const listed = [...kustomization.resources, ...(kustomization.configMapGenerator ?? []).flatMap((g) => g.files)];
    expect([...listed].sort()).toEqual([...onDisk].sort());
  });

  test('every object validates against its Kubernetes JSON schema (ServiceMonitor: the CRD schema)', () => {
    const errors: string[] = [];
    for (const m of manifests) {
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
    expect(manifests.map((m) => m.manifest.kind)).toEqual(
      expect.arrayContaining(['Deployment', 'Service', 'Ingress', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'StatefulSet', 'ConfigMap', 'Secret', 'ServiceMonitor']),
    );
  });

  test('no object has a field its type does not define (typos pass the JSON schemas)', () => {
    expect(unknownFieldErrors(manifests)).toEqual([]);
  });

  test('the unknown-field check does catch a misspelt field', () => {
    const gateway = manifests.find((m) => m.manifest.kind === 'Deployment') as LoadedManifest;
    const broken = JSON.parse(JSON.stringify(gateway.manifest)) as IDeployment;
    (broken.spec?.template.spec?.containers[0] as unknown as Record<string, unknown>).readinesProbe = {};
    const errors = unknownFieldErrors([{ ...gateway, manifest: broken as unknown as Manifest }]);
    expect(errors).toEqual([expect.stringContaining("'\"readinesProbe\"' does not exist")]);
  });

  const roleOf: Record<string, Role> = { 'switchboard-gateway': 'gateway', 'switchboard-worker': 'worker' };

  describe.each(Object.keys(roleOf))('%s', (name) => {
    const role = roleOf[name];
    const pod = podTemplate('Deployment', name);
    const container = onlyContainer(pod.spec);
    const env = resolvedEnv(container, `${name}-7d9c6-abcde`);

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
      const configFile = configFileOnDisk(pod.spec, container, env.SWITCHBOARD_CONFIG);
      const config = runConfig(role, { ...env, SWITCHBOARD_CONFIG: configFile });
      const ports = container.ports ?? [];
      expect(ports).toEqual([expect.objectContaining({ name: 'http', containerPort: config.port })]);
      expect(config.redis).toEqual(['redis://switchboard-redis:6379']);
      expect(config.nodeName).toBe(`${name}-7d9c6-abcde`);
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

    test('has resource requests and a memory limit', () => {
      expect(container.resources?.requests).toEqual(expect.objectContaining({ cpu: expect.anything(), memory: expect.anything() }));
      expect(container.resources?.limits?.memory).toBeDefined();
    });

    test('mounts the generated config at SWITCHBOARD_CONFIG and gives /tmp a volume', () => {
      expect(existsSync(configFileOnDisk(pod.spec, container, env.SWITCHBOARD_CONFIG))).toBe(true);
      expect((container.volumeMounts ?? []).map((m) => m.mountPath)).toContain('/tmp');
    });

    test('uses the image kustomize sets, and the non-root user the Dockerfile creates', () => {
      expect((kustomization.images ?? []).map((i) => i.name)).toContain(container.image);
      expect(pod.spec.securityContext?.runAsUser).toBe(dockerfile.runtimeUid);
    });
  });

  test('gateways and workers agree on the Redis shards and the number of document partitions', () => {
    const configs = Object.entries(roleOf).map(([name, role]) => {
      const pod = podTemplate('Deployment', name);
      const container = onlyContainer(pod.spec);
      const env = resolvedEnv(container, name);
      return runConfig(role, { ...env, SWITCHBOARD_CONFIG: configFileOnDisk(pod.spec, container, env.SWITCHBOARD_CONFIG) });
    });
    expect(configs[0].docPartitions).toBe(configs[1].docPartitions);
    expect(configs[0].redis).toEqual(configs[1].redis);
  });

  test.each(['Deployment/switchboard-gateway', 'Deployment/switchboard-worker', 'StatefulSet/switchboard-redis'])(
    '%s: non-root, read-only root filesystem, no capabilities, no service links, no API token',
    (ref) => {
      const [kind, name] = ref.split('/') as ['Deployment' | 'StatefulSet', string];
      const { spec } = podTemplate(kind, name);
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
        // A pinned tag, never :latest (the switchboard image's tag is set by kustomize).
        if (c.image !== 'switchboard') expect(c.image).toMatch(/:[0-9][\w.-]*$/);
      }
    },
  );

  test('gateways spread across nodes, roll one at a time, and leave the replica count to the HPA', () => {
    const deployment = find<IDeployment>('Deployment', 'switchboard-gateway');
    const pod = podTemplate('Deployment', 'switchboard-gateway');
    const spread = pod.spec.topologySpreadConstraints ?? [];
    const byHost = spread.find((c) => c.topologyKey === 'kubernetes.io/hostname');
    expect(byHost).toEqual(expect.objectContaining({ maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule' }));
    expect(byHost?.labelSelector?.matchLabels).toEqual(deployment.spec?.selector.matchLabels);
    expect(deployment.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    expect(deployment.spec?.replicas).toBeUndefined();
  });

  test('selectors: the Deployment, Service, PDB and HPA all point at the gateway pods', () => {
    const deployment = find<IDeployment>('Deployment', 'switchboard-gateway');
    const podLabels = podTemplate('Deployment', 'switchboard-gateway').labels;
    const selector = deployment.spec?.selector.matchLabels ?? {};
    expect(podLabels).toEqual(expect.objectContaining(selector));

    const service = find<IService>('Service', 'switchboard-gateway');
    expect(podLabels).toEqual(expect.objectContaining(service.spec?.selector ?? { missing: 'selector' }));
    const container = onlyContainer(podTemplate('Deployment', 'switchboard-gateway').spec);
    expect(service.spec?.ports).toEqual([expect.objectContaining({ name: 'http', targetPort: 'http' })]);
    expect(container.ports?.map((p) => p.name)).toContain('http');

    const pdb = find<IPodDisruptionBudget>('PodDisruptionBudget', 'switchboard-gateway');
    expect(pdb.spec?.selector?.matchLabels).toEqual(selector);
    expect(pdb.spec?.maxUnavailable ?? pdb.spec?.minAvailable).toBeDefined();

    const hpa = find<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler', 'switchboard-gateway');
    expect(hpa.spec?.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'switchboard-gateway' });
    expect(hpa.spec?.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec?.metrics?.map((m) => m.resource?.name)).toEqual(['cpu']);
    // The HPA computes CPU utilization against requests.
    expect(container.resources?.requests?.cpu).toBeDefined();
  });

  test('the Ingress routes the WebSocket endpoint and the API to the gateway Service with WebSocket timeouts', () => {
    const ingress = find<IIngress>('Ingress', 'switchboard-gateway');
    const annotations = (ingress.metadata?.annotations ?? {}) as Record<string, string>;
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThan(2 * PING_INTERVAL_SECONDS);
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThan(2 * PING_INTERVAL_SECONDS);
    expect(ingress.spec?.ingressClassName).toBe('nginx');
    const paths = (ingress.spec?.rules ?? []).flatMap((r) => r.http?.paths ?? []);
    expect(paths.map((p) => p.path).sort()).toEqual(['/api/', '/connection/websocket']);
    for (const p of paths) expect(p.backend.service).toEqual({ name: 'switchboard-gateway', port: { name: 'http' } });
  });

  test('ServiceMonitors select the gateway and worker Services and scrape /metrics on a port they name', () => {
    const monitors = manifests.filter((m) => m.manifest.kind === 'ServiceMonitor').map((m) => m.manifest as unknown as IServiceMonitor);
    const services = manifests.filter((m) => m.manifest.kind === 'Service').map((m) => m.manifest as unknown as IService);
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
    const secret = find<ISecret>('Secret', 'switchboard-secrets');
    const data = secret.stringData ?? {};
    for (const name of ['switchboard-gateway', 'switchboard-worker']) {
      for (const variable of onlyContainer(podTemplate('Deployment', name).spec).env ?? []) {
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
}

const compose = parseYaml(read('deploy', 'docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
const services = compose.services;
const switchboardServices = Object.entries(services).filter(([, s]) => s.image === 'switchboard:local');
const gatewayServices = switchboardServices.filter(([, s]) => s.command?.[0] === 'gateway').map(([name]) => name);

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
    expect(Object.keys(env).filter((n) => !cliEnvNames.has(n))).toEqual([]);
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
