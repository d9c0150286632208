using System.Net;
using Identity.Propagation;
using Identity.Server.Connect;
using Identity.Server.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Identity.Server.Hosting;

/// <summary>
/// OpenTelemetry for the authority (decision 0071): traces of ASP.NET Core, HttpClient, EF Core, MassTransit and the
/// outbox's dispatch (the change's trace context stored with each row and carried to the regions in the messages'
/// headers, decision 0084), sampled parent-based; the authority's meters; OTLP export when a
/// collector is configured; a Prometheus scrape endpoint on the management port only. Logs carry the trace and span ids.
/// </summary>
public static class TelemetryExtensions
{
    public const string ServiceName = "identity-server";

    /// <summary>
    /// The meters the authority exports: its own, the outbox's, the client access policy's, ASP.NET Core's, and the
    /// .NET runtime's (GC heap and allocated bytes, pauses, thread pool, lock contention: observable instruments, read
    /// only when scraped, so no cost per request; <c>bench/authcode-bench.sh</c> reads the allocated bytes).
    /// </summary>
    public static readonly string[] Meters =
    [
        AuthorityMetrics.MeterName, OutboxMetrics.MeterName, ClientRefusals.AccessMeterName,
        "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.RateLimiting",
        "System.Runtime",
    ];

    private const string ScrapePath = "/metrics";

    public static IHostApplicationBuilder AddTelemetry(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<TelemetryOptions>()
            .BindConfiguration(TelemetryOptions.SectionName)
            .ValidateDataAnnotations()
            .Validate(o => o.ManagementAddress is "*" || IPAddress.TryParse(o.ManagementAddress, out _),
                "Telemetry:ManagementAddress must be * or an IP address.")
            .Validate(o => o.OtlpEndpoint is null || o.OtlpEndpoint.IsAbsoluteUri, "Telemetry:OtlpEndpoint must be an absolute URI.")
            .ValidateOnStart();
        builder.Services.AddSingleton<AuthorityMetrics>();
        // Every log entry written inside a request or a consumed message names its trace and span.
        builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);

        var options = builder.Configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>() ?? new TelemetryOptions();
        var otlp = options.OtlpEndpoint;
        var telemetry = builder.Services.AddOpenTelemetry().ConfigureResource(r => r.AddService(ServiceName));
        if (otlp is not null || options.ManagementPort is not null)
        {
            telemetry.WithMetrics(metrics =>
            {
                metrics.AddMeter(Meters);
                if (options.ManagementPort is not null)
                {
                    metrics.AddPrometheusExporter();
                }

                if (otlp is not null)
                {
                    metrics.AddOtlpExporter(o => o.Endpoint = otlp);
                }
            });
        }

        // After AddOpenTelemetry: hosted services start in order, and the exporters must listen first.
        builder.Services.AddHostedService<MetricSeriesStart>();

        if (options.TracesEnabled)
        {
            telemetry.WithTracing(tracing =>
            {
                tracing.SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(options.TraceSampleRatio)))
                    // Probes and scrapes are not traced: they would be most traces, and say nothing.
                    .AddAspNetCoreInstrumentation(o => o.Filter = http => !http.Request.Path.StartsWithSegments("/health")
                        && !(options.ManagementPort is { } port && http.Connection.LocalPort == port))
                    .AddHttpClientInstrumentation()
                    .AddEntityFrameworkCoreInstrumentation()
                    .AddSource("MassTransit", OutboxTracing.SourceName);
                if (otlp is not null)
                {
                    tracing.AddOtlpExporter(o => o.Endpoint = otlp);
                }
            });
        }

        if (options.ManagementPort is { } management)
        {
            builder.AddListener(kestrel =>
            {
                if (options.ManagementAddress == "*")
                {
                    kestrel.ListenAnyIP(management);
                }
                else
                {
                    kestrel.Listen(IPAddress.Parse(options.ManagementAddress), management);
                }
            });
        }

        return builder;
    }

    /// <summary>
    /// The management port answers <c>/metrics</c> (Prometheus text) and nothing else (404); no other port answers
    /// <c>/metrics</c>. First in the pipeline: a scraper names the pod's address, not the issuer's host.
    /// </summary>
    public static WebApplication UseManagementPort(this WebApplication app)
    {
        var options = app.Configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>();
        if (options?.ManagementPort is not { } port)
        {
            return app;
        }

        app.UseWhen(http => http.Connection.LocalPort == port, management =>
        {
            management.UseOpenTelemetryPrometheusScrapingEndpoint(http => http.Request.Path == ScrapePath);
            management.Run(http =>
            {
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            });
        });
        return app;
    }
}
