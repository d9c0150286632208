using Identity.Core.Data;
using Identity.Server.Audit;
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
/// Private material never leaves the server; the public halves are in the JWKS.
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

    private static IResult List(HttpContext context, SigningKeyRing ring) =>
        context.Admin().IsPlatformAdmin ? TypedResults.Ok(Describe(ring)) : AdminActorExtensions.PlatformOnly();

    private static async Task<IResult> RotateAsync(
        HttpContext context, AuthorityDbContext db, SigningKeyStore store, SigningKeyRing ring, IAuditTrail audit)
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

        var algorithms = body!.Algorithms is { Count: > 0 } named ? named.Distinct(StringComparer.Ordinal).ToList() : [.. SigningKeyMaterial.Algorithms];
        // A null in the list ("algorithms":[null]) is as unknown as any other name.
        if (algorithms.FindIndex(a => a is null || !SigningKeyMaterial.Algorithms.Contains(a)) is var index and >= 0)
        {
            return AdminHttp.Invalid("algorithms",
                $"Unknown key algorithm '{algorithms[index]}': use {string.Join(", ", SigningKeyMaterial.Algorithms)}.");
        }

        var replaced = ring.Stages.Where(s => algorithms.Contains(s.Key.Algorithm)).Select(s => s.Key.KeyId).ToList();
        audit.Record(actor.Actor, "keys.rotated", "keys", string.Join(",", algorithms), null,
            new { algorithms, revokePrevious = body.RevokePrevious, replaced });
        if (!await store.RotateNowAsync(db, algorithms, body.RevokePrevious, context.RequestAborted))
        {
            return AdminHttp.Conflict("Another replica replaced these keys at the same moment: read the keys again.");
        }

        await ring.RefreshAsync(db, context.RequestAborted);
        return TypedResults.Ok(Describe(ring));
    }

    private static List<SigningKeyView> Describe(SigningKeyRing ring) =>
        [.. ring.Stages.Select(s => new SigningKeyView(
            s.Key.KeyId, s.Key.Algorithm, s.Key.Generation, s.Stage, s.Key.CreatedAt, s.Key.ActivatesAt, s.Key.RetiredAt))];
}
