using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading.RateLimiting;
using Identity.Core.Policies;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Hosting;

/// <summary>
/// Per-client-address throttling of password sign-in and of the token endpoint (<see cref="ThrottlingOptions"/>),
/// with ASP.NET Core rate limiting. Neither is an endpoint that can carry a policy (a Razor page handler, OpenIddict's
/// middleware), so one global limiter partitions requests by (endpoint, client address), and everything else gets
/// no limiter at all: the middleware only runs on the two throttled requests.
/// </summary>
public static class RateLimitingExtensions
{
    public const string SignInPath = "/Account/Login";
    public const string TokenPath = "/connect/token";
    public const string PasswordResetPath = "/Account/ForgotPassword";

    private static readonly TimeSpan SignInWindow = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan PasswordResetWindow = TimeSpan.FromHours(1);

    /// <summary>Registers and validates the limits; <see cref="UseSignInThrottling"/> applies them.</summary>
    public static IHostApplicationBuilder AddSignInThrottling(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ThrottlingOptions>()
            .BindConfiguration(ThrottlingOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        builder.Services.AddRateLimiter(_ => { });
        builder.Services.AddOptions<RateLimiterOptions>().Configure<IOptions<ThrottlingOptions>>((limiter, throttling) =>
        {
            var options = throttling.Value;
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, ThrottleKey>(context => Partition(context, options));
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests; // RFC 6585 §4
            limiter.OnRejected = RejectAsync;
        });

        return builder;
    }

    /// <summary>
    /// Throttles the two requests. Place it before anything that does real work on them (before
    /// <c>UseAuthentication</c>, where OpenIddict answers the token endpoint) and after <c>UseForwardedHeaders</c>
    /// when there is one: the client address is <see cref="ConnectionInfo.RemoteIpAddress"/>.
    /// </summary>
    public static WebApplication UseSignInThrottling(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<ThrottlingOptions>>().Value;
        if (options.Enabled)
        {
            app.UseWhen(context => Classify(context, options) is not null, branch => branch.UseRateLimiter());
        }

        return app;
    }

    /// <summary>The throttled endpoint a request counts against, or <c>null</c> when it is not throttled.</summary>
    internal static ThrottledEndpoint? Classify(HttpContext context, ThrottlingOptions options)
    {
        // Only submissions count: showing the sign-in page costs nothing, and the token endpoint accepts POST only.
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            return null;
        }

        // Case-insensitive, trailing slash included, as routing matches them.
        var path = context.Request.Path;
        ThrottledEndpoint endpoint;
        if (path.StartsWithSegments(TokenPath, StringComparison.OrdinalIgnoreCase))
        {
            endpoint = ThrottledEndpoint.Token;
        }
        else if (path.StartsWithSegments(SignInPath, StringComparison.OrdinalIgnoreCase))
        {
            endpoint = ThrottledEndpoint.SignIn;
        }
        else if (path.StartsWithSegments(PasswordResetPath, StringComparison.OrdinalIgnoreCase))
        {
            endpoint = ThrottledEndpoint.PasswordReset;
        }
        else
        {
            return null;
        }

        // No address: an in-process host (TestServer) or a socket without one; there is no client to tell apart.
        var address = context.Connection.RemoteIpAddress;
        if (address is null || (options.ExemptLoopback && IPAddress.IsLoopback(IpRanges.Normalize(address))))
        {
            return null;
        }

        return endpoint;
    }

    /// <summary>
    /// The client a request is counted for: its IPv4 address, or the /64 of its IPv6 address. One IPv6 subscriber
    /// usually gets a whole /64 (often more) and can use any address in it, so per-address IPv6 limits are no limit.
    /// </summary>
    internal static IPAddress ClientOf(IPAddress address)
    {
        address = IpRanges.Normalize(address);
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address;
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes);
    }

    private static RateLimitPartition<ThrottleKey> Partition(HttpContext context, ThrottlingOptions options)
    {
        if (Classify(context, options) is not { } endpoint)
        {
            return RateLimitPartition.GetNoLimiter(default(ThrottleKey));
        }

        var key = new ThrottleKey(endpoint, ClientOf(context.Connection.RemoteIpAddress!));
        return endpoint switch
        {
            // Sliding, so that a burst at the end of one minute and another at the start of the next are not 2x the limit.
            ThrottledEndpoint.SignIn => RateLimitPartition.GetSlidingWindowLimiter(key, _ => new SlidingWindowRateLimiterOptions
            {
                PermitLimit = options.SignInPerMinute,
                Window = SignInWindow,
                SegmentsPerWindow = 6,
                QueueLimit = 0,
            }),
            ThrottledEndpoint.PasswordReset => RateLimitPartition.GetSlidingWindowLimiter(key, _ => new SlidingWindowRateLimiterOptions
            {
                PermitLimit = options.PasswordResetPerHour,
                Window = PasswordResetWindow,
                SegmentsPerWindow = 6,
                QueueLimit = 0,
            }),
            _ => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = options.TokenPerSecond,
                TokensPerPeriod = options.TokenPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
            }),
        };
    }

    /// <summary>
    /// 429 with Retry-After (RFC 6585 §4, RFC 9110 §10.2.3). The token endpoint answers in its own error format
    /// (RFC 6749 §5.2 has no code for this: <c>invalid_request</c>, which every client handles, rather than
    /// RFC 8628's <c>slow_down</c>, which means "poll less often" to device-flow clients only); the sign-in page gets
    /// a plain-text page. Rejections are counted by ASP.NET Core's <c>aspnetcore.rate_limiting.requests</c> metric
    /// (result <c>global_limiter</c>) rather than logged one by one: a flood would flood the log too.
    /// </summary>
    private static async ValueTask RejectAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        var context = rejected.HttpContext;
        var response = context.Response;
        var isToken = context.Request.Path.StartsWithSegments(TokenPath, StringComparison.OrdinalIgnoreCase);
        var isReset = context.Request.Path.StartsWithSegments(PasswordResetPath, StringComparison.OrdinalIgnoreCase);
        // Counted (identity.throttled) where the server has its telemetry; the throttle also runs alone.
        context.RequestServices.GetService<Telemetry.AuthorityMetrics>()?.Throttled(isToken ? "token" : isReset ? "password_reset" : "sign_in");

        // A token bucket's refused lease says when the next token comes; a sliding window's says nothing, and its
        // permits come back anywhere from one segment to one window later: the window is the honest answer.
        var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after
            : isToken ? TimeSpan.FromSeconds(1) : isReset ? PasswordResetWindow : SignInWindow;
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        response.Headers.XContentTypeOptions = "nosniff";

        if (isToken)
        {
            response.ContentType = "application/json;charset=UTF-8";
            response.Headers.CacheControl = "no-store"; // RFC 6749 §5.1
            response.Headers.Pragma = "no-cache";
            await JsonSerializer.SerializeAsync(response.Body, new Dictionary<string, string>(StringComparer.Ordinal)
            {
                [Parameters.Error] = Errors.InvalidRequest,
                [Parameters.ErrorDescription] = "Too many requests from this address.",
            }, cancellationToken: cancellationToken);
            return;
        }

        response.ContentType = "text/plain;charset=UTF-8";
        response.Headers.CacheControl = "no-store";
        await response.WriteAsync(
            string.Create(CultureInfo.InvariantCulture,
                $"Too many {(isReset ? "password-reset requests" : "sign-in attempts")} from this address. Try again in {seconds} seconds."),
            cancellationToken);
    }
}

/// <summary>What a throttled request counts against.</summary>
internal enum ThrottledEndpoint
{
    SignIn = 1,
    Token,
    PasswordReset,
}

/// <summary>A partition of the limiter: one endpoint, one client (<see cref="RateLimitingExtensions.ClientOf"/>).</summary>
internal readonly record struct ThrottleKey(ThrottledEndpoint Endpoint, IPAddress? Client);
