using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;

namespace Identity.Region.Tokens;

public static class TokenClientExtensions
{
    /// <summary>The name of the token client a service has when it has one.</summary>
    public const string DefaultName = "default";

    /// <summary>
    /// A token client named <paramref name="name"/>: its options bound from <c>IdentityTokenClient</c> (the default
    /// one) or <c>IdentityTokenClient:{name}</c>, validated at start; its <see cref="HttpClient"/> retries transient
    /// failures with jittered backoff behind a circuit breaker. Resolve it as a keyed
    /// <see cref="IdentityTokenClient"/>, or attach it to an HttpClient with <see cref="AddIdentityAccessToken"/>.
    /// </summary>
    public static OptionsBuilder<IdentityTokenClientOptions> AddIdentityTokenClient(this IServiceCollection services, string name = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (services.Any(d => d.ServiceType == typeof(IdentityTokenClient) && Equals(d.ServiceKey, name)))
        {
            // Added already: a second call only configures it (its HttpClient's handlers are not added twice).
            return services.AddOptions<IdentityTokenClientOptions>(name);
        }

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<IdentityTokenClientOptions>, IdentityTokenClientOptionsValidator>());
        services.TryAddKeyedSingleton(name, (provider, _) => new IdentityTokenClient(
            name,
            provider.GetRequiredService<IHttpClientFactory>(),
            provider.GetRequiredService<IOptionsMonitor<IdentityTokenClientOptions>>(),
            provider.GetRequiredService<TimeProvider>(),
            provider.GetRequiredService<ILogger<IdentityTokenClient>>()));

        var http = services.AddHttpClient(HttpClientName(name))
            .ConfigurePrimaryHttpMessageHandler(provider =>
                provider.GetRequiredKeyedService<IdentityTokenClient>(name).Authentication.CreatePrimaryHandler(Options(provider, name)));
        http.AddResilienceHandler("identity-token", (pipeline, context) => AddResilience(pipeline, Options(context.ServiceProvider, name)));
        // After the resilience handler, so inside it: each attempt is authenticated afresh.
        http.AddHttpMessageHandler(provider => new ClientAuthenticationHandler(
            provider.GetRequiredKeyedService<IdentityTokenClient>(name), provider.GetRequiredService<TimeProvider>()));

        return services.AddOptions<IdentityTokenClientOptions>(name)
            .BindConfiguration(SectionOf(name))
            .ValidateDataAnnotations()
            .ValidateOnStart();
    }

    /// <summary>Sets a Bearer token from the token client <paramref name="name"/> on this HttpClient's requests.</summary>
    public static IHttpClientBuilder AddIdentityAccessToken(this IHttpClientBuilder builder, string name = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddHttpMessageHandler(provider => new IdentityAccessTokenHandler(provider.GetRequiredKeyedService<IdentityTokenClient>(name)));
    }

    /// <summary>
    /// This HttpClient's connections present the certificate of the token client <paramref name="name"/> (mutual
    /// TLS): the one its tokens are bound to (RFC 8705 §3), so that the called API sees the certificate its token
    /// names, also after a rotation. The called server's certificate is checked against the system's roots and the
    /// token client's <see cref="IdentityTokenClientOptions.TrustedServerCaFile"/>. Replaces the primary handler.
    /// </summary>
    public static IHttpClientBuilder UseIdentityClientCertificate(this IHttpClientBuilder builder, string name = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigurePrimaryHttpMessageHandler(provider =>
        {
            var client = provider.GetRequiredKeyedService<IdentityTokenClient>(name);
            if (client.Authentication is not MutualTlsAuthentication)
            {
                throw new InvalidOperationException(
                    $"UseIdentityClientCertificate: token client '{name}' has no certificate; set {SectionOf(name)}:CertificateFile.");
            }

            return client.Authentication.CreatePrimaryHandler(Options(provider, name));
        });
    }

    internal static string SectionOf(string? name) =>
        name is null or "" or DefaultName ? IdentityTokenClientOptions.SectionName : $"{IdentityTokenClientOptions.SectionName}:{name}";

    /// <summary>
    /// The named <see cref="HttpClient"/> the token client <paramref name="name"/> sends its token requests through:
    /// configure its primary handler for an outbound proxy or an in-memory test server.
    /// </summary>
    public static string HttpClientName(string name) => $"IdentityTokenClient:{name}";

    private static IdentityTokenClientOptions Options(IServiceProvider provider, string name) =>
        provider.GetRequiredService<IOptionsMonitor<IdentityTokenClientOptions>>().Get(name);

    /// <summary>
    /// Retry outside, breaker inside: every attempt counts towards the breaker, and an open circuit is not retried
    /// (Polly's <c>BrokenCircuitException</c> is not transient), so callers fail at once while Identity is down.
    /// Only transient outcomes are retried: an RFC 6749 §5.2 error such as <c>invalid_client</c> is an answer.
    /// </summary>
    private static void AddResilience(ResiliencePipelineBuilder<HttpResponseMessage> pipeline, IdentityTokenClientOptions options)
    {
        if (options.RetryAttempts > 0)
        {
            pipeline.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = options.RetryAttempts,
                Delay = options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                // Retry-After on a 429 or 503 (RFC 9110 §10.2.3) wins over the computed delay.
                ShouldRetryAfterHeader = true,
            });
        }

        pipeline.AddCircuitBreaker(new HttpCircuitBreakerStrategyOptions
        {
            FailureRatio = options.CircuitFailureRatio,
            MinimumThroughput = options.CircuitMinimumThroughput,
            SamplingDuration = options.CircuitSamplingDuration,
            BreakDuration = options.CircuitBreakDuration,
        });
        pipeline.AddTimeout(new HttpTimeoutStrategyOptions { Timeout = options.AttemptTimeout });
    }
}
