using System.ComponentModel.DataAnnotations;

namespace Identity.Server.Hosting;

/// <summary>
/// The <c>Telemetry</c> section (decision 0071): where traces and metrics go. With nothing set, metrics are still
/// counted (in-process, for <c>dotnet-counters</c>) and nothing is exported or served.
/// </summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Telemetry";

    /// <summary>
    /// An OpenTelemetry collector (OTLP, e.g. <c>http://otel-collector:4317</c>): traces and metrics are exported to it.
    /// The standard <c>OTEL_EXPORTER_OTLP_*</c> variables (protocol, headers) refine it.
    /// </summary>
    public Uri? OtlpEndpoint { get; set; }

    /// <summary>Record traces; on by default when <see cref="OtlpEndpoint"/> is set (traces need somewhere to go).</summary>
    public bool? Traces { get; set; }

    /// <summary>
    /// The share of traces started here that are recorded (parent-based: a request whose caller sampled its trace is
    /// always recorded, one whose caller did not never is). 0.01 records one new trace in a hundred.
    /// </summary>
    [Range(0.0, 1.0, ErrorMessage = "Telemetry:TraceSampleRatio must be from 0 to 1.")]
    public double TraceSampleRatio { get; set; } = 0.01;

    /// <summary>
    /// The management port: Prometheus scrapes <c>/metrics</c> there, and only there (never on the public or mTLS
    /// ports). None: no scrape endpoint.
    /// </summary>
    [Range(1, 65535, ErrorMessage = "Telemetry:ManagementPort must be from 1 to 65535.")]
    public int? ManagementPort { get; set; }

    /// <summary>The address the management port listens on (default all: a pod's scraper comes from another host).</summary>
    public string ManagementAddress { get; set; } = "*";

    internal bool TracesEnabled => Traces ?? OtlpEndpoint is not null;
}
