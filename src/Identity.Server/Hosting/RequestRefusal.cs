using Identity.Server.Connect;

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
            await ProtocolRequestGuard.WriteErrorAsync(context, detail);
            return;
        }

        await TypedResults.Problem(statusCode: problemStatus, title: title, detail: detail).ExecuteAsync(context);
    }
}
