/** Applies the project's CRDs to the chaos control plane and waits until they are served. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import { REPO_ROOT } from '../harness/paths.js';

/** Server-side applies every `crds/ecsops.io_*.yaml` and waits for each to be Established. */
export async function applyProjectCrdsRaw(kc: KubeConfig): Promise<void> {
  const files = readdirSync(join(REPO_ROOT, 'crds')).filter((f) => f.startsWith('ecsops.io_'));
  const names: string[] = [];
  for (const f of files) {
    const crd = parse(readFileSync(join(REPO_ROOT, 'crds', f), 'utf8')) as { metadata: { name: string } };
    names.push(crd.metadata.name);
    await kubeRequestRaw(
      kc,
      'PATCH',
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}?fieldManager=ecsops-chaos&force=true`,
      crd,
      'application/apply-patch+yaml',
    );
  }
  for (const name of names) {
    for (let i = 0; ; i++) {
      const crd = (await kubeRequestRaw(
        kc,
        'GET',
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
      )) as {
        status?: { conditions?: Array<{ type: string; status: string }> };
      };
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 100) throw new Error(`CRD ${name} not Established`);
      await sleep(100);
    }
  }
  await sleep(1000); // discovery catches up
}
