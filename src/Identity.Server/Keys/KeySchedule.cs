using Identity.Core.Keys;

namespace Identity.Server.Keys;

/// <summary>
/// When keys are made, sign and retire: pure date arithmetic over generations, no storage, no crypto. Each algorithm
/// has generations <c>RS256/1</c>, <c>RS256/2</c>, …: the next one is published ahead of use, then signs, while the
/// previous one stays published and accepted until every token it signed has expired (OpenID Connect Core 1.0 §10.1.1:
/// keys are rotated by publishing the new key in the JWKS; relying parties fetch the JWKS again on an unknown
/// <c>kid</c>). Which key is active follows from the dates stored with the keys, so replicas agree without talking.
/// </summary>
public static class KeySchedule
{
    /// <summary>The key signs new tokens.</summary>
    public const string Active = "active";

    /// <summary>The key is published and accepted, and signs from its activation date.</summary>
    public const string Next = "next";

    /// <summary>A later key took over; this one stays accepted until it retires.</summary>
    public const string Previous = "previous";

    /// <summary>The generation in the row's slot (<c>ES256/3</c> → 3).</summary>
    public static int Generation(SigningKey key) =>
        int.TryParse(key.Slot.AsSpan(key.Slot.IndexOf('/', StringComparison.Ordinal) + 1), out var generation) ? generation : 0;

    /// <summary>When the key signs from: keys made before rotation existed have no date and sign since their creation.</summary>
    public static DateTimeOffset Activation(SigningKey key) => key.ActivatesAt ?? key.CreatedAt;

    /// <summary>
    /// How long a key stays accepted after the next one took over: the longest a token it signed can live (a refresh
    /// token, or a day for access tokens, whichever is longer), plus a day for relying parties' JWKS caches.
    /// </summary>
    public static TimeSpan Retention(TimeSpan refreshTokenLifetime) =>
        TimeSpan.FromDays(1) + TimeSpan.FromTicks(Math.Max(refreshTokenLifetime.Ticks, TimeSpan.FromDays(1).Ticks));

    /// <summary>
    /// When the generation after the newest one (signing since <paramref name="newestActivation"/>) starts signing, if it
    /// must be created at <paramref name="now"/>: <see cref="KeyRotationOptions.RotationPeriod"/> after the newest one's
    /// activation, and never less than <see cref="KeyRotationOptions.PublishAhead"/> from now (a server that was down
    /// when it was due still publishes the key that long before it signs). <c>null</c> while it is not due yet.
    /// </summary>
    public static DateTimeOffset? NextActivation(DateTimeOffset newestActivation, KeyRotationOptions settings, DateTimeOffset now)
    {
        var due = newestActivation + settings.RotationPeriod;
        if (now < due - settings.PublishAhead)
        {
            return null;
        }

        var earliest = now + settings.PublishAhead;
        return due > earliest ? due : earliest;
    }

    /// <summary>
    /// When a key replaced on request at <paramref name="now"/> retires: after <paramref name="retention"/>, or at once when
    /// revoked; never later than a retirement it already had.
    /// </summary>
    public static DateTimeOffset RetirementOnReplace(DateTimeOffset? retiredAt, DateTimeOffset now, TimeSpan retention, bool revoke)
    {
        var retiresAt = revoke ? now : now + retention;
        return retiredAt is { } existing && existing < retiresAt ? existing : retiresAt;
    }

    /// <summary>Whether a key is still published and accepted at <paramref name="now"/>.</summary>
    public static bool IsLive(DateTimeOffset? retiredAt, DateTimeOffset now) => retiredAt is not { } retired || retired > now;

    /// <summary>
    /// The key of <paramref name="algorithm"/> that signs at <paramref name="now"/>: the latest already active; if none is
    /// yet (a replica whose clock lags the one that created the first keys), the earliest to activate.
    /// </summary>
    public static RingKey ActiveOf(IEnumerable<RingKey> live, string algorithm, DateTimeOffset now)
    {
        var candidates = live.Where(k => k.Algorithm == algorithm).ToList();
        return candidates.Where(k => k.ActivatesAt <= now).MaxBy(k => (k.ActivatesAt, k.Generation))
            ?? candidates.MinBy(k => k.ActivatesAt)
            ?? throw new InvalidOperationException($"No {algorithm} key in the store.");
    }

    /// <summary><see cref="Active"/>, <see cref="Next"/> or <see cref="Previous"/>.</summary>
    public static string Stage(RingKey key, bool active, DateTimeOffset now) =>
        active ? Active : key.ActivatesAt > now ? Next : Previous;

    /// <summary>
    /// When the key after <paramref name="active"/> starts signing: a published next key says so; otherwise the schedule
    /// does (the active key's activation plus <paramref name="rotationPeriod"/>). Earlier than now means overdue.
    /// </summary>
    public static DateTimeOffset NextRotation(IEnumerable<(RingKey Key, string Stage)> stages, RingKey active, TimeSpan rotationPeriod) =>
        stages.Where(s => s.Stage == Next && s.Key.Algorithm == active.Algorithm).Select(s => (DateTimeOffset?)s.Key.ActivatesAt).Min()
        ?? active.ActivatesAt + rotationPeriod;

    /// <summary>The first activation or retirement among <paramref name="keys"/> after <paramref name="now"/>: what they mean changes then.</summary>
    public static DateTimeOffset NextChange(IEnumerable<RingKey> keys, DateTimeOffset now) =>
        keys.SelectMany(k => new[] { k.ActivatesAt, k.RetiredAt ?? DateTimeOffset.MaxValue })
            .Where(at => at > now)
            .DefaultIfEmpty(DateTimeOffset.MaxValue)
            .Min();
}
