using Identity.Region.Messaging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Identity.RegionSample.Telemetry;

public static class RegionTelemetryExtensions
{
    /// <summary>
    /// OpenTelemetry for a regional service (decision 0084), off unless configured (<see cref="RegionTelemetryOptions"/>):
    /// traces of ASP.NET Core, HttpClient (the sync API, the token client), MassTransit's receive and the replica's
    /// apply (<see cref="RegionTracing"/>), which joins the trace of the change at the authority carried in each
    /// event's headers; the <c>Identity.Region</c> meter (replica lag, batches) over OTLP.
    /// </summary>
    public static IHostApplicationBuilder AddRegionTelemetry(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<RegionTelemetryOptions>()
            .BindConfiguration(RegionTelemetryOptions.SectionName)
            .ValidateDataAnnotations()
            .Validate(o => o.OtlpEndpoint is null || o.OtlpEndpoint.IsAbsoluteUri, "Telemetry:OtlpEndpoint must be an absolute URI.")
            .ValidateOnStart();
        // Log entries written while an event is applied name its trace.
        builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);

        var options = builder.Configuration.GetSection(RegionTelemetryOptions.SectionName).Get<RegionTelemetryOptions>() ?? new RegionTelemetryOptions();
        if (options.OtlpEndpoint is null && !options.TracesEnabled)
        {
            return builder;
        }

        var region = builder.Configuration["IdentityRegion:Region"] ?? builder.Configuration["Identity:Region"] ?? "";
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("identity-region-" + region));
        if (options.OtlpEndpoint is { } otlp)
        {
            telemetry.WithMetrics(metrics => metrics
                .AddMeter(RegionMetrics.MeterName, "Microsoft.AspNetCore.Hosting")
                .AddOtlpExporter(o => o.Endpoint = otlp));
        }

        if (options.TracesEnabled)
        {
            telemetry.WithTracing(tracing =>
            {
                tracing.SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(options.TraceSampleRatio)))
                    .AddAspNetCoreInstrumentation(o => o.Filter = http => !http.Request.Path.StartsWithSegments("/health"))
                    .AddHttpClientInstrumentation()
                    .AddSource("MassTransit", RegionTracing.SourceName);
                if (options.OtlpEndpoint is { } endpoint)
                {
                    tracing.AddOtlpExporter(o => o.Endpoint = endpoint);
                }
            });
        }

        return builder;
    }
}
