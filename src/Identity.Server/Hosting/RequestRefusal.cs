using System.Text.Json;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Hosting;

/// <summary>
/// How the front door refuses a malformed request, in the error format its client reads: on the protocol endpoints
/// (<c>/connect/*</c>) an RFC 6749 §5.2 <c>invalid_request</c> (400, JSON); anywhere else an RFC 9457 problem.
/// </summary>
public static class RequestRefusal
{
    public static async Task WriteAsync(HttpContext context, int problemStatus, string title, string detail)
    {
        if (context.Request.Path.StartsWithSegments("/connect", StringComparison.OrdinalIgnoreCase))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            context.Response.ContentType = "application/json;charset=UTF-8";
            context.Response.Headers.CacheControl = "no-store";
            await JsonSerializer.SerializeAsync(context.Response.Body,
                new Dictionary<string, string> { [Parameters.Error] = Errors.InvalidRequest, [Parameters.ErrorDescription] = detail },
                cancellationToken: context.RequestAborted);
            return;
        }

        await TypedResults.Problem(statusCode: problemStatus, title: title, detail: detail).ExecuteAsync(context);
    }
}
