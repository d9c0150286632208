using System.ComponentModel.DataAnnotations;

namespace Identity.RegionSample.Telemetry;

/// <summary>
/// The <c>Telemetry</c> section of a regional service, as the authority's (decision 0071): with nothing set, nothing is
/// recorded or exported; with an OTLP endpoint, traces and metrics go there.
/// </summary>
public sealed class RegionTelemetryOptions
{
    public const string SectionName = "Telemetry";

    /// <summary>An OpenTelemetry collector (OTLP, e.g. <c>http://otel-collector:4317</c>); <c>OTEL_EXPORTER_OTLP_*</c> refine it.</summary>
    public Uri? OtlpEndpoint { get; set; }

    /// <summary>Record traces; on by default when <see cref="OtlpEndpoint"/> is set.</summary>
    public bool? Traces { get; set; }

    /// <summary>
    /// The share of traces started here that are recorded. Parent-based: an event whose change at the authority was
    /// recorded is always recorded here too (decision 0084), one that was not never is.
    /// </summary>
    [Range(0.0, 1.0, ErrorMessage = "Telemetry:TraceSampleRatio must be from 0 to 1.")]
    public double TraceSampleRatio { get; set; } = 0.01;

    internal bool TracesEnabled => Traces ?? OtlpEndpoint is not null;
}
