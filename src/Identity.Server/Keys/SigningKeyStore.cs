using Identity.Core.Data;
using Identity.Core.Keys;
using Identity.Server.Connect;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Identity.Server.Keys;

/// <summary>
/// The token keys' rows, which every replica shares: the first keys, the next generation when <see cref="KeySchedule"/>
/// says it is due, replacement on request, deletion once retired. Replicas racing to write the same generation are kept
/// apart by the row's primary key (<see cref="SigningKey.Slot"/>): the loser gives way and reads the winner's key.
/// What a write changes is used once <see cref="SigningKeyRing.RefreshAsync"/> has read it.
/// </summary>
public sealed class SigningKeyStore(
    SigningKeyMaterial material,
    TimeProvider time,
    IOptions<OidcOptions> oidc,
    IOptionsMonitor<KeyRotationOptions> rotation,
    ILogger<SigningKeyStore> logger)
{
    /// <summary>How long a replaced key stays accepted (<see cref="KeySchedule.Retention"/>).</summary>
    public TimeSpan Retention => KeySchedule.Retention(oidc.Value.RefreshTokenLifetime);

    /// <summary>First start: one key of each algorithm, active at once.</summary>
    public async Task InitializeAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        foreach (var algorithm in SigningKeyMaterial.Algorithms)
        {
            if (await db.SigningKeys.AsNoTracking().AnyAsync(k => k.Algorithm == algorithm, cancellationToken))
            {
                continue;
            }

            var key = NewKey(algorithm, generation: 1, createdAt: now, activatesAt: now);
            db.SigningKeys.Add(key);
            if (await TrySaveAsync(db, cancellationToken))
            {
                logger.LogInformation("Created {Algorithm} key {KeyId}", key.Algorithm, key.KeyId);
            }
        }
    }

    /// <summary>
    /// What every replica does every <see cref="KeyRotationOptions.CheckInterval"/>: delete keys past retirement, and
    /// create the next generation when one is due (if automatic rotation is on).
    /// </summary>
    public async Task MaintainAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await DeleteRetiredAsync(db, now, cancellationToken);

        var settings = rotation.CurrentValue;
        if (!settings.AutomaticRotation)
        {
            return;
        }

        var keys = await db.SigningKeys.ToListAsync(cancellationToken);
        foreach (var algorithm in SigningKeyMaterial.Algorithms)
        {
            var newest = keys.Where(k => k.Algorithm == algorithm).MaxBy(KeySchedule.Generation);
            if (newest is null || KeySchedule.NextActivation(KeySchedule.Activation(newest), settings, now) is not { } activatesAt)
            {
                continue;
            }

            var next = NewKey(algorithm, KeySchedule.Generation(newest) + 1, now, activatesAt);
            newest.RetiredAt = activatesAt + Retention;
            db.SigningKeys.Add(next);
            if (!await TrySaveAsync(db, cancellationToken))
            {
                break; // another replica rotates at this moment (the rows read are no longer tracked): next check
            }

            logger.LogInformation(
                "Created {Algorithm} key {KeyId}: published now, signs from {ActivatesAt:O}; key {PreviousKeyId} retires at {RetiresAt:O}",
                algorithm, next.KeyId, activatesAt, newest.KeyId, newest.RetiredAt);
        }
    }

    /// <summary>
    /// Replaces the keys of <paramref name="algorithms"/> at once (a suspected compromise, or a manual rotation).
    /// The new keys sign from now. The previous keys stay accepted for <see cref="Retention"/>, or are deleted at once
    /// with <paramref name="revokePrevious"/>: every token they signed or encrypted stops being accepted then.
    /// </summary>
    /// <returns><c>false</c> when another replica rotated the same generation at the same moment.</returns>
    public async Task<bool> RotateNowAsync(
        AuthorityDbContext db, IReadOnlyCollection<string> algorithms, bool revokePrevious, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var created = new List<SigningKey>();
        var all = await db.SigningKeys.ToListAsync(cancellationToken);
        foreach (var algorithm in algorithms)
        {
            var keys = all.Where(k => k.Algorithm == algorithm).ToList();
            var next = NewKey(algorithm, keys.Count == 0 ? 1 : keys.Max(KeySchedule.Generation) + 1, now, now);
            foreach (var previous in keys)
            {
                previous.RetiredAt = KeySchedule.RetirementOnReplace(previous.RetiredAt, now, Retention, revokePrevious);
            }

            db.SigningKeys.Add(next);
            created.Add(next);
        }

        if (!await TrySaveAsync(db, cancellationToken))
        {
            return false;
        }

        foreach (var key in created)
        {
            logger.LogWarning("Rotated {Algorithm} keys on request: {KeyId} signs from now; previous keys {Fate}",
                key.Algorithm, key.KeyId, revokePrevious ? "revoked at once" : "retire after " + Retention);
        }

        await DeleteRetiredAsync(db, now, cancellationToken);
        return true;
    }

    /// <summary>The rows of the keys not retired at <paramref name="now"/>, untracked.</summary>
    public Task<List<SigningKey>> LiveAsync(AuthorityDbContext db, DateTimeOffset now, CancellationToken cancellationToken) =>
        db.SigningKeys.AsNoTracking()
            .Where(k => k.RetiredAt == null || k.RetiredAt > now)
            .ToListAsync(cancellationToken);

    private SigningKey NewKey(string algorithm, int generation, DateTimeOffset createdAt, DateTimeOffset activatesAt)
    {
        var (keyId, protectedMaterial) = material.Create(algorithm);
        return new SigningKey
        {
            Slot = $"{algorithm}/{generation}",
            Algorithm = algorithm,
            KeyId = keyId,
            ProtectedMaterial = protectedMaterial,
            CreatedAt = createdAt,
            ActivatesAt = activatesAt,
        };
    }

    private async Task DeleteRetiredAsync(AuthorityDbContext db, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var retired = await db.SigningKeys.Where(k => k.RetiredAt != null && k.RetiredAt <= now).ToListAsync(cancellationToken);
        if (retired.Count == 0)
        {
            return;
        }

        db.SigningKeys.RemoveRange(retired);
        if (await TrySaveAsync(db, cancellationToken))
        {
            foreach (var key in retired)
            {
                logger.LogInformation("Deleted retired {Algorithm} key {KeyId}", key.Algorithm, key.KeyId);
            }
        }
    }

    /// <summary>Saves; a replica that lost a race (the same generation inserted, or a row already deleted) gives way.</summary>
    private static async Task<bool> TrySaveAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
            return false;
        }
    }
}
