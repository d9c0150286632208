using System.Text.Json.Nodes;

namespace Identity.Server.IntegrationTests.Deployment;

/// <summary>
/// <c>deploy/kubernetes</c> (issue 19 item 5): every overlay rendered by <c>kubectl kustomize</c> (offline, no cluster)
/// and its objects checked: probes on the health endpoints, resources, non-root, secrets as files only, the migration
/// Job, the Ingress with TLS and the mTLS alias matching the server's forwarding settings, the autoscaler and budget.
/// </summary>
public sealed class KubernetesManifestTests
{
    public static TheoryData<string, string> Overlays => new() { { "development", "identity-dev" }, { "production", "identity" } };

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Overlay_Rendered_ServerHasProbesResourcesAndRunsAsNonRoot(string overlay, string ns)
    {
        var objects = await RenderAsync(overlay);

        Assert.All(objects, o => Assert.Equal(ns, (string?)o["metadata"]!["namespace"]));
        Assert.Equal(["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Ingress", "Job", "NetworkPolicy", "NetworkPolicy",
            "PodDisruptionBudget", "Service", "ServiceAccount"], objects.Select(o => (string)o["kind"]!).Order(StringComparer.Ordinal));
        var pod = Single(objects, "Deployment")["spec"]!["template"]!["spec"]!;
        var server = pod["containers"]![0]!;

        // Probes on the existing health endpoints, by the port's name.
        Assert.Equal("8080", (string?)server["ports"]![0]!["containerPort"]);
        Assert.Equal(("/health/live", "http"), Probe(server, "startupProbe"));
        Assert.Equal(("/health/live", "http"), Probe(server, "livenessProbe"));
        Assert.Equal(("/health/ready", "http"), Probe(server, "readinessProbe"));

        // Requests for scheduling and the autoscaler; a memory limit.
        Assert.NotNull((string?)server["resources"]!["requests"]!["cpu"]);
        Assert.NotNull((string?)server["resources"]!["requests"]!["memory"]);
        Assert.NotNull((string?)server["resources"]!["limits"]!["memory"]);

        AssertNonRoot(pod);
        Assert.Equal("false", (string?)pod["automountServiceAccountToken"]);

        var hpa = Single(objects, "HorizontalPodAutoscaler")["spec"]!;
        Assert.Equal("identity-server", (string?)hpa["scaleTargetRef"]!["name"]);
        Assert.True(int.Parse((string)hpa["minReplicas"]!) >= 2, "at least two replicas: one alone is no high availability");
        var budget = Single(objects, "PodDisruptionBudget")["spec"]!;
        Assert.Equal(pod.Parent!["metadata"]!["labels"]!["app.kubernetes.io/component"]!.ToJsonString(),
            budget["selector"]!["matchLabels"]!["app.kubernetes.io/component"]!.ToJsonString());
        Assert.Equal("0", (string?)Single(objects, "Deployment")["spec"]!["strategy"]!["rollingUpdate"]!["maxUnavailable"]);
    }

    /// <summary>
    /// A rollout or a drain must not cut requests off (issue 19 item 2): the pod leaves the Service before SIGTERM
    /// (preStop), and the host's drain ends before the grace period runs out (Kubernetes' SIGKILL).
    /// </summary>
    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Overlay_Rendered_StoppingPodLeavesTheServiceThenDrainsWithinTheGracePeriod(string overlay, string ns)
    {
        var objects = await RenderAsync(overlay);
        var deployment = Single(objects, "Deployment");
        Assert.Equal(ns, (string?)deployment["metadata"]!["namespace"]);
        var pod = deployment["spec"]!["template"]!["spec"]!;
        var preStop = int.Parse((string)pod["containers"]![0]!["lifecycle"]!["preStop"]!["sleep"]!["seconds"]!, System.Globalization.CultureInfo.InvariantCulture);
        var drain = int.Parse((string)Single(objects, "ConfigMap")["data"]!["shutdownTimeoutSeconds"]!, System.Globalization.CultureInfo.InvariantCulture);
        var grace = int.Parse((string)pod["terminationGracePeriodSeconds"]!, System.Globalization.CultureInfo.InvariantCulture);

        Assert.InRange(preStop, 3, 15); // long enough for endpoint removal to reach the ingress, short enough for rollouts
        Assert.InRange(drain, 10, 60);
        Assert.True(preStop + drain + 5 <= grace, $"preStop {preStop} s + drain {drain} s must end at least 5 s before the grace period ({grace} s)");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Overlay_Rendered_SecretsOnlyAsReadOnlyFilesTheSettingsPointAt(string overlay, string ns)
    {
        _ = ns;
        var objects = await RenderAsync(overlay);
        var settings = Single(objects, "ConfigMap")["data"]!.AsObject();

        foreach (var pod in new[] { Single(objects, "Deployment"), Single(objects, "Job") }.Select(o => o["spec"]!["template"]!["spec"]!))
        {
            var container = pod["containers"]![0]!;
            // No secret in the environment: no secretKeyRef, no secretRef (a process's environment leaks into dumps and logs).
            Assert.DoesNotContain("secretKeyRef", container.ToJsonString(), StringComparison.Ordinal);
            Assert.DoesNotContain("secretRef", container.ToJsonString(), StringComparison.Ordinal);
            var secretVolumes = pod["volumes"]!.AsArray().Where(v => v!["secret"] is not null).Select(v => (string)v!["name"]!).ToHashSet();
            Assert.NotEmpty(secretVolumes);
            var mounts = container["volumeMounts"]!.AsArray().Where(m => secretVolumes.Contains((string)m!["name"]!)).ToList();
            Assert.Equal(secretVolumes.Count, mounts.Count);
            Assert.All(mounts, m =>
            {
                Assert.Equal("true", (string?)m!["readOnly"]);
                Assert.StartsWith("/run/secrets/identity/", (string?)m["mountPath"], StringComparison.Ordinal);
            });
            Assert.All(pod["volumes"]!.AsArray().Where(v => v!["secret"] is not null), v => Assert.Equal("288", (string?)v!["secret"]!["defaultMode"])); // 0440
        }

        // Every file a setting names is in a folder the server mounts; the connection string holds no password.
        var serverMounts = Single(objects, "Deployment")["spec"]!["template"]!["spec"]!["containers"]![0]!["volumeMounts"]!.AsArray()
            .Select(m => (string)m!["mountPath"]!).ToList();
        var files = settings.Select(s => (string)s.Value!).SelectMany(v => v.Split(';', '='))
            .Where(v => v.StartsWith("/run/secrets/", StringComparison.Ordinal)).ToList();
        Assert.Contains("/run/secrets/identity/database/pgpass", files);
        Assert.All(files, f => Assert.Contains(serverMounts, m => f.StartsWith(m + "/", StringComparison.Ordinal)));
        Assert.DoesNotContain("Password", (string?)settings["Database__ConnectionString"], StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(settings, s => s.Key.Contains("AllowUnprotectedKeys", StringComparison.Ordinal) || s.Key.EndsWith("__ClientSecret", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Overlay_Rendered_MigrationJobRunsTheServersImageAndSettings(string overlay, string ns)
    {
        _ = ns;
        var objects = await RenderAsync(overlay);
        var server = Single(objects, "Deployment")["spec"]!["template"]!["spec"]!["containers"]![0]!;
        var job = Single(objects, "Job")["spec"]!;
        var migrate = job["template"]!["spec"]!["containers"]![0]!;

        Assert.Equal(["migrate"], migrate["args"]!.AsArray().Select(a => (string?)a));
        Assert.Equal((string?)server["image"], (string?)migrate["image"]);
        Assert.Equal(server["envFrom"]!.ToJsonString(), migrate["envFrom"]!.ToJsonString());
        Assert.Equal("Never", (string?)job["template"]!["spec"]!["restartPolicy"]);
        Assert.NotNull((string?)job["backoffLimit"]);
        AssertNonRoot(job["template"]!["spec"]!);
        Assert.Contains(migrate["volumeMounts"]!.AsArray(), m => (string?)m!["mountPath"] == "/run/secrets/identity/database");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Overlay_Rendered_IngressServesTheIssuerAndTheMtlsAliasAsTheServerExpects(string overlay, string ns)
    {
        var objects = await RenderAsync(overlay);
        var settings = Single(objects, "ConfigMap")["data"]!;
        var ingresses = objects.Where(o => (string?)o["kind"] == "Ingress").ToDictionary(o => (string)o["metadata"]!["name"]!);
        var issuer = new Uri((string)settings["Oidc__Issuer"]!);
        var alias = new Uri((string)settings["Mtls__BaseUri"]!);

        Assert.Equal("https", issuer.Scheme);
        Assert.NotEqual(issuer.Host, alias.Host); // decision 0047: the certificate header is believed for the alias's host only
        foreach (var (name, host) in new[] { ("identity", issuer.Host), ("identity-mtls", alias.Host) })
        {
            var spec = ingresses[name]["spec"]!;
            Assert.Equal(host, (string?)spec["rules"]![0]!["host"]);
            Assert.Equal(host, (string?)spec["tls"]![0]!["hosts"]![0]);
            Assert.NotNull((string?)spec["tls"]![0]!["secretName"]);
            Assert.Equal("identity-server", (string?)spec["rules"]![0]!["http"]!["paths"]![0]!["backend"]!["service"]!["name"]);
        }

        // ingress-nginx asks for a certificate without judging it and replaces ssl-client-cert with the connection's own.
        var annotations = ingresses["identity-mtls"]["metadata"]!["annotations"]!;
        Assert.Equal("optional_no_ca", (string?)annotations["nginx.ingress.kubernetes.io/auth-tls-verify-client"]);
        Assert.Equal("true", (string?)annotations["nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream"]);
        Assert.Equal($"{ns}/identity-client-ca", (string?)annotations["nginx.ingress.kubernetes.io/auth-tls-secret"]);
        Assert.Equal("ssl-client-cert", (string?)settings["Mtls__ForwardedCertificateHeader"]);
        Assert.NotNull((string?)settings["ForwardedHeaders__KnownNetworks__0"]);
        Assert.Null(ingresses["identity"]["metadata"]!["annotations"]!["nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream"]);

        // Only the ingress controller's namespace reaches the server's port.
        var policy = objects.Single(o => (string?)o["kind"] == "NetworkPolicy" && (string?)o["metadata"]!["name"] == "identity-server")["spec"]!;
        Assert.Equal("ingress-nginx", (string?)policy["ingress"]![0]!["from"]![0]!["namespaceSelector"]!["matchLabels"]!["kubernetes.io/metadata.name"]);
    }

    private static async Task<List<JsonNode>> RenderAsync(string overlay)
    {
        var (exitCode, output, errors) = await DeploymentFiles.RunAsync("kubectl",
            ["kustomize", DeploymentFiles.PathOf("deploy", "kubernetes", "overlays", overlay)], TimeSpan.FromMinutes(1));
        Assert.True(exitCode == 0, $"kubectl kustomize {overlay} exited {exitCode}: {errors}");
        return DeploymentFiles.YamlDocuments(output);
    }

    private static JsonNode Single(List<JsonNode> objects, string kind) => objects.Single(o => (string?)o["kind"] == kind);

    private static (string?, string?) Probe(JsonNode container, string probe) =>
        ((string?)container[probe]!["httpGet"]!["path"], (string?)container[probe]!["httpGet"]!["port"]);

    private static void AssertNonRoot(JsonNode pod)
    {
        Assert.Equal("true", (string?)pod["securityContext"]!["runAsNonRoot"]);
        Assert.NotEqual("0", (string?)pod["securityContext"]!["runAsUser"]);
        foreach (var container in pod["containers"]!.AsArray())
        {
            Assert.Equal("false", (string?)container!["securityContext"]!["allowPrivilegeEscalation"]);
            Assert.Equal("true", (string?)container["securityContext"]!["readOnlyRootFilesystem"]);
        }
    }
}
