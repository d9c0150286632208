using System.Globalization;
using Identity.Core.Data;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Npgsql;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Hosting;

public static class StoreOutageExtensions
{
    /// <summary>
    /// While the database cannot serve, a request that needs it is answered 503 with <c>Retry-After</c>, in the format
    /// its client reads, within the bounded database waits (<c>Database:ConnectTimeout</c>, <c>Database:CommandTimeout</c>),
    /// never with a 500 or a hang (decision 0083). Answered from <c>UseExceptionHandler</c>.
    /// </summary>
    public static IHostApplicationBuilder AddStoreOutageAnswer(this IHostApplicationBuilder builder)
    {
        builder.Services.AddExceptionHandler<StoreOutageAnswer>();
        return builder;
    }
}

/// <summary>
/// The 503 for a request that failed because the database cannot serve (<see cref="StoreOutages.IsStoreOutage"/>):
/// on the protocol endpoints RFC 6749 JSON with <c>temporarily_unavailable</c>, on the APIs an RFC 9457 problem, to a
/// browser a plain page. Any other exception is left to the default handler (500 problem, no stack trace).
/// </summary>
public sealed partial class StoreOutageAnswer(ILogger<StoreOutageAnswer> logger) : IExceptionHandler
{
    /// <summary>What <c>Retry-After</c> says: about a readiness probe's period.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    private const string Description = "The service is temporarily unavailable. Try again shortly.";

    private const string Page = """
        <!DOCTYPE html>
        <html lang="en">
        <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Temporarily unavailable</title></head>
        <body>
        <h1>Temporarily unavailable</h1>
        <p>Signing in is not possible for a moment. Please try again in a few seconds.</p>
        </body>
        </html>
        """;

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var context = httpContext;
        if (!exception.IsStoreOutage() || context.Response.HasStarted)
        {
            return false;
        }

        // Connections the outage broke are dropped now, so that none is handed out again once the database is back.
        NpgsqlConnection.ClearAllPools();
        SqlConnection.ClearAllPools();
        SqliteConnection.ClearAllPools();
        LogOutage(logger, context.Request.Method, context.Request.Path, exception.GetType().Name, exception.Message);

        var request = context.Request;
        var browser = request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase);
        var protocol = request.Path.StartsWithSegments("/connect", StringComparison.OrdinalIgnoreCase)
            || request.Path.StartsWithSegments("/.well-known", StringComparison.OrdinalIgnoreCase);
        // The front-channel endpoints, reached by a browser: without the client's registration the redirect_uri cannot be
        // checked, so the error is shown to the person, not sent back to the client (RFC 6749 §4.1.2.1).
        var frontChannel = request.Path.StartsWithSegments("/connect/authorize", StringComparison.OrdinalIgnoreCase)
            || request.Path.StartsWithSegments("/connect/endsession", StringComparison.OrdinalIgnoreCase);
        var api = request.Path.StartsWithSegments("/admin", StringComparison.OrdinalIgnoreCase)
            || request.Path.StartsWithSegments("/sync", StringComparison.OrdinalIgnoreCase);

        if (protocol && !(frontChannel && browser))
        {
            // temporarily_unavailable: RFC 6749 §4.1.2.1 and §4.2.2.1 (OpenID Connect Core 1.0 §3.1.2.6 keeps it); the token,
            // introspection and revocation endpoints answer with the same code, with 503 and Retry-After saying it passes.
            await ProtocolRequestGuard.WriteErrorAsync(context, StatusCodes.Status503ServiceUnavailable,
                Errors.TemporarilyUnavailable, Description, RetryAfter);
            return true;
        }

        context.Response.Clear();
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        context.Response.Headers.RetryAfter = RetryAfter.TotalSeconds.ToString(CultureInfo.InvariantCulture);
        context.Response.Headers.CacheControl = "no-store";
        if (browser && !api)
        {
            context.Response.ContentType = "text/html; charset=utf-8";
            context.Response.Headers.ContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'";
            await context.Response.WriteAsync(Page, cancellationToken);
            return true;
        }

        // RFC 9457; the status's meaning is RFC 9110 §15.6.4.
        await TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Service unavailable",
            detail: Description, type: "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.4").ExecuteAsync(context);
        return true;
    }

    [LoggerMessage(LogLevel.Warning, "{Method} {Path} answered 503: the database cannot serve ({ErrorType}: {ErrorMessage})")]
    private static partial void LogOutage(ILogger logger, string method, string path, string errorType, string errorMessage);
}
