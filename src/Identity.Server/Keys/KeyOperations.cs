using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Server.Admin;
using Microsoft.Extensions.Options;

namespace Identity.Server.Keys;

/// <summary>
/// The token keys as administrators see and replace them, for the admin API and the console alike: the stages of the
/// ring, and rotation on demand with its audit entry (the actor, the algorithms, the keys replaced). Private material
/// never leaves the server; the public halves are in the JWKS.
/// </summary>
public sealed class KeyOperations(
    AuthorityDbContext db, SigningKeyStore store, SigningKeyRing ring, IAuditTrail audit, IOptionsMonitor<KeyRotationOptions> rotation)
{
    public const string RotatedElsewhere = "Another replica replaced these keys at the same moment: read the keys again.";

    /// <summary>Every key of the ring with its stage (<c>next</c>, <c>active</c>, <c>previous</c>) and dates.</summary>
    public IReadOnlyList<SigningKeyView> Describe() =>
        [.. ring.Stages.Select(s => new SigningKeyView(
            s.Key.KeyId, s.Key.Algorithm, s.Key.Generation, s.Stage, s.Key.CreatedAt, s.Key.ActivatesAt, s.Key.RetiredAt))];

    /// <summary>
    /// When each algorithm's next key starts signing (<see cref="KeySchedule.NextRotation"/>), by algorithm; null where
    /// keys are replaced only on request and no next key is published.
    /// </summary>
    public IReadOnlyDictionary<string, DateTimeOffset?> NextRotations()
    {
        var settings = rotation.CurrentValue;
        var stages = ring.Stages;
        return stages.Where(s => s.Stage == KeySchedule.Active).ToDictionary(s => s.Key.Algorithm, s =>
            settings.AutomaticRotation || stages.Any(n => n.Stage == KeySchedule.Next && n.Key.Algorithm == s.Key.Algorithm)
                ? KeySchedule.NextRotation(stages, s.Key, settings.RotationPeriod)
                : (DateTimeOffset?)null, StringComparer.Ordinal);
    }

    /// <summary>
    /// Replaces the keys of <paramref name="algorithms"/> (all when none are named); with <paramref name="revokePrevious"/>
    /// the replaced keys stop being accepted at once, otherwise when their tokens have expired.
    /// </summary>
    public async Task<OperationResult> RotateAsync(IReadOnlyList<string>? algorithms, bool revokePrevious, Actor actor, CancellationToken cancellationToken)
    {
        var named = algorithms is { Count: > 0 } some ? some.Distinct(StringComparer.Ordinal).ToList() : [.. SigningKeyMaterial.Algorithms];
        // A null in the list ("algorithms":[null]) is as unknown as any other name.
        if (named.FindIndex(a => a is null || !SigningKeyMaterial.Algorithms.Contains(a)) is var index and >= 0)
        {
            return OperationResult.Invalid("algorithms",
                $"Unknown key algorithm '{named[index]}': use {string.Join(", ", SigningKeyMaterial.Algorithms)}.");
        }

        var replaced = ring.Stages.Where(s => named.Contains(s.Key.Algorithm)).Select(s => s.Key.KeyId).ToList();
        audit.Record(actor, "keys.rotated", "keys", string.Join(",", named), null, new { algorithms = named, revokePrevious, replaced });
        if (!await store.RotateNowAsync(db, named, revokePrevious, cancellationToken))
        {
            return OperationResult.Conflict(RotatedElsewhere);
        }

        await ring.RefreshAsync(db, cancellationToken);
        return OperationResult.Done;
    }
}
