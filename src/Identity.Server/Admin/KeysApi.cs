using Identity.Server.Keys;

namespace Identity.Server.Admin;

/// <param name="Stage"><c>next</c> (published, not yet signing), <c>active</c> (signs new tokens) or <c>previous</c> (accepted until it retires).</param>
public sealed record SigningKeyView(
    string KeyId, string Algorithm, int Generation, string Stage, DateTimeOffset CreatedAt, DateTimeOffset ActivatesAt, DateTimeOffset? RetiresAt);

/// <param name="Algorithms">Which keys to replace: <c>RS256</c>, <c>ES256</c>, <c>A256KW</c>; all three when omitted.</param>
/// <param name="RevokePrevious">
/// Stop accepting the replaced keys at once (a compromised key): every token they signed or encrypted — access, ID and
/// refresh tokens, codes — is refused from then on. Otherwise they stay accepted until their tokens have expired.
/// </param>
public sealed record RotateKeysRequest(IReadOnlyList<string>? Algorithms, bool RevokePrevious);

/// <summary>
/// <c>/admin/v1/keys</c> (platform administrators): the token keys and their stages, and rotation on demand.
/// The rules live in <see cref="KeyOperations"/> (shared with the console); this file translates HTTP.
/// </summary>
public static class KeysApi
{
    public static RouteGroupBuilder MapKeysApi(this RouteGroupBuilder admin)
    {
        var keys = admin.MapGroup("/keys").WithTags("Keys");
        keys.MapGet("/", List);
        keys.MapPost("/rotate", RotateAsync).AcceptsJson<RotateKeysRequest>();
        return admin;
    }

    private static IResult List(HttpContext context, KeyOperations keys) =>
        context.Admin().IsPlatformAdmin ? TypedResults.Ok(keys.Describe()) : AdminActorExtensions.PlatformOnly();

    private static async Task<IResult> RotateAsync(HttpContext context, KeyOperations keys)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        var (body, problem) = await AdminHttp.ReadAsync<RotateKeysRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        var result = await keys.RotateAsync(body!.Algorithms, body.RevokePrevious, actor.Actor, context.RequestAborted);
        return result.Succeeded ? TypedResults.Ok(keys.Describe()) : AdminHttp.Refused(result);
    }
}
