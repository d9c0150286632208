using Microsoft.AspNetCore.Http.Features;

namespace Identity.Server.Admin;

/// <summary>
/// Front door of the admin API (<c>/admin</c>), ahead of routing:
/// <list type="bullet">
/// <item>a request whose path, as sent, holds a <c>.</c> or <c>..</c> segment (also percent-encoded) or a backslash
/// is refused with a 400 problem. Kestrel removes dot segments (RFC 3986 §5.2.4) before routing, so
/// <c>DELETE …/accounts/{id}/users/..</c> would otherwise reach <c>DELETE …/accounts/{id}</c>;</item>
/// <item>every body is limited to <see cref="AdminHttp.MaxBodyBytes"/>, chunked ones included (the server enforces
/// it while the body is read);</item>
/// <item>an error answered without a body (no route, wrong method) becomes an RFC 9457 problem, like every other
/// admin error.</item>
/// </list>
/// </summary>
public sealed class AdminRequestGuard(RequestDelegate next, IProblemDetailsService problems)
{
    public const string Prefix = "/admin";

    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            await next(context);
            return;
        }

        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (HasDotSegmentOrBackslash(string.IsNullOrEmpty(raw) ? context.Request.Path.Value : raw))
        {
            // As every admin route answers: TypedResults.Problem writes the problem as JSON whatever the Accept header
            // (the problem details service alone finds no writer for Accept: text/html, and throws).
            await TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Bad request",
                detail: "The path must not contain '.' or '..' segments or backslashes: name the resource itself.").ExecuteAsync(context);
            return;
        }

        // A declared length over the limit is refused before any route runs: the limit below only bites when a body is
        // read, and a DELETE that reads none would otherwise act on a request it should have refused (RFC 9110 §15.5.14).
        if (context.Request.ContentLength > AdminHttp.MaxBodyBytes)
        {
            await AdminHttp.TooLarge().ExecuteAsync(context);
            return;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = AdminHttp.MaxBodyBytes;
        }

        await next(context);

        var response = context.Response;
        if (!response.HasStarted && response.StatusCode >= 400 && response.ContentLength is null && string.IsNullOrEmpty(response.ContentType))
        {
            await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context });
        }
    }

    /// <summary>Whether the path of a request target (origin or absolute form, query ignored) has a dot segment or a backslash.</summary>
    public static bool HasDotSegmentOrBackslash(string? target)
    {
        if (string.IsNullOrEmpty(target))
        {
            return false;
        }

        var path = target.AsSpan();
        var query = path.IndexOfAny('?', '#');
        if (query >= 0)
        {
            path = path[..query];
        }

        // Decoded once, as the server decodes the path; %2F and %5C count as the separators they decode to.
        var decoded = Uri.UnescapeDataString(path.ToString());
        if (decoded.Contains('\\', StringComparison.Ordinal))
        {
            return true;
        }

        foreach (var segment in decoded.Split('/'))
        {
            if (segment is "." or "..")
            {
                return true;
            }
        }

        return false;
    }
}
