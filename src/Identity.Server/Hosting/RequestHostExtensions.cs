namespace Identity.Server.Hosting;

/// <summary>
/// Refuses a request whose <c>Host</c> is not a host and port: RFC 9112 §3.2 — "a server MUST respond with a 400 (Bad
/// Request) status code to any request message that contains ... a Host header field with an invalid field value".
/// Kestrel passes <c>Host: localhost:99999</c> on; OpenIddict then cannot build the request's address, matches no
/// endpoint, and the authorize page and userinfo answered 500 (found by the bad-input corpus, seed 42).
/// </summary>
public static class RequestHostExtensions
{
    public static WebApplication UseValidHostOnly(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if (IsValid(context.Request.Host))
            {
                await next(context);
                return;
            }

            await RequestRefusal.WriteAsync(context, StatusCodes.Status400BadRequest, "Bad Request",
                "The Host header must name a host and, optionally, a port between 1 and 65535.");
        });
        return app;
    }

    /// <summary>An absent Host (HTTP/1.0) is left to Kestrel, which refuses it where HTTP/1.1 requires one.</summary>
    internal static bool IsValid(HostString host) =>
        !host.HasValue
        || (Uri.CheckHostName(host.Host) != UriHostNameType.Unknown
            && (host.Port is null ? !host.Value.Contains(':', StringComparison.Ordinal) || host.Value.EndsWith(']') : host.Port is > 0 and <= 65535));
}
