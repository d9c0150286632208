using Identity.Core.Keys;
using Identity.Server.Keys;

namespace Identity.Server.IntegrationTests.Keys;

/// <summary>The rotation schedule's date arithmetic (<see cref="KeySchedule"/>), without a server, a database or a key.</summary>
public sealed class KeyScheduleTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly KeyRotationOptions Every90DaysTwoAhead = new()
    {
        RotationPeriod = TimeSpan.FromDays(90),
        PublishAhead = TimeSpan.FromDays(2),
    };

    [Fact]
    public void NextActivation_EarlierThanPublishAheadOfTheDueDate_NotYet()
    {
        var now = T0 + TimeSpan.FromDays(88) - TimeSpan.FromSeconds(1);

        Assert.Null(KeySchedule.NextActivation(T0, Every90DaysTwoAhead, now));
    }

    [Fact]
    public void NextActivation_PublishAheadOfTheDueDate_SignsFromTheDueDate()
    {
        var now = T0 + TimeSpan.FromDays(88);

        Assert.Equal(T0 + TimeSpan.FromDays(90), KeySchedule.NextActivation(T0, Every90DaysTwoAhead, now));
    }

    [Fact]
    public void NextActivation_DueDatePassedWhileTheServerWasDown_StillPublishedPublishAheadBeforeItSigns()
    {
        var now = T0 + TimeSpan.FromDays(100);

        Assert.Equal(now + TimeSpan.FromDays(2), KeySchedule.NextActivation(T0, Every90DaysTwoAhead, now));
    }

    [Theory]
    [InlineData(1, 2)] // an hour of refresh token: still a day for access tokens, plus a day for JWKS caches
    [InlineData(24, 2)]
    [InlineData(14 * 24, 15)] // two weeks of refresh token, plus a day
    public void Retention_RefreshTokenLifetime_LongestTokenPlusADay(int refreshHours, int days)
    {
        Assert.Equal(TimeSpan.FromDays(days), KeySchedule.Retention(TimeSpan.FromHours(refreshHours)));
    }

    [Fact]
    public void RetirementOnReplace_Kept_RetiresAfterTheRetention()
    {
        Assert.Equal(T0 + TimeSpan.FromDays(2), KeySchedule.RetirementOnReplace(null, T0, TimeSpan.FromDays(2), revoke: false));
    }

    [Fact]
    public void RetirementOnReplace_Revoked_RetiresNow()
    {
        Assert.Equal(T0, KeySchedule.RetirementOnReplace(T0 + TimeSpan.FromDays(1), T0, TimeSpan.FromDays(2), revoke: true));
    }

    [Fact]
    public void RetirementOnReplace_AlreadyRetiringSooner_KeepsTheEarlierDate()
    {
        var sooner = T0 + TimeSpan.FromHours(3);

        Assert.Equal(sooner, KeySchedule.RetirementOnReplace(sooner, T0, TimeSpan.FromDays(2), revoke: false));
    }

    [Theory]
    [InlineData("ES256/1", 1)]
    [InlineData("RS256/12", 12)]
    [InlineData("A256KW", 0)]
    public void Generation_Slot_NumberAfterTheSlash(string slot, int generation)
    {
        Assert.Equal(generation, KeySchedule.Generation(Row(slot, activatesAt: null)));
    }

    [Fact]
    public void Activation_KeyFromBeforeRotation_SignsSinceItsCreation()
    {
        Assert.Equal(T0, KeySchedule.Activation(Row("RS256/1", activatesAt: null)));
        Assert.Equal(T0 + TimeSpan.FromDays(1), KeySchedule.Activation(Row("RS256/2", activatesAt: T0 + TimeSpan.FromDays(1))));
    }

    [Fact]
    public void ActiveOf_OneActiveOneNext_TheLatestAlreadyActiveSignsAndTheOtherIsNext()
    {
        var current = Key("ES256", 1, T0);
        var next = Key("ES256", 2, T0 + TimeSpan.FromDays(2));
        var now = T0 + TimeSpan.FromDays(1);

        var active = KeySchedule.ActiveOf([current, next, Key("RS256", 3, T0)], "ES256", now);

        Assert.Same(current, active);
        Assert.Equal(KeySchedule.Active, KeySchedule.Stage(current, active: true, now));
        Assert.Equal(KeySchedule.Next, KeySchedule.Stage(next, active: false, now));
    }

    [Fact]
    public void ActiveOf_NextActivated_ItSignsAndTheFormerIsPrevious()
    {
        var former = Key("ES256", 1, T0);
        var current = Key("ES256", 2, T0 + TimeSpan.FromDays(2));
        var now = T0 + TimeSpan.FromDays(2);

        Assert.Same(current, KeySchedule.ActiveOf([former, current], "ES256", now));
        Assert.Equal(KeySchedule.Previous, KeySchedule.Stage(former, active: false, now));
    }

    [Fact]
    public void ActiveOf_ClockBehindEveryActivation_TheEarliestToActivate()
    {
        var first = Key("RS256", 1, T0 + TimeSpan.FromSeconds(2));
        var second = Key("RS256", 2, T0 + TimeSpan.FromDays(2));

        Assert.Same(first, KeySchedule.ActiveOf([second, first], "RS256", T0));
    }

    [Fact]
    public void ActiveOf_NoKeyOfTheAlgorithm_Throws()
    {
        Assert.Throws<InvalidOperationException>(() => KeySchedule.ActiveOf([Key("RS256", 1, T0)], "A256KW", T0));
    }

    [Fact]
    public void NextChange_ActivationsAndRetirements_TheFirstAfterNow()
    {
        var keys = new[]
        {
            Key("ES256", 1, T0, retiredAt: T0 + TimeSpan.FromDays(5)),
            Key("ES256", 2, T0 + TimeSpan.FromDays(3)),
        };

        Assert.Equal(T0 + TimeSpan.FromDays(3), KeySchedule.NextChange(keys, T0 + TimeSpan.FromDays(1)));
        Assert.Equal(T0 + TimeSpan.FromDays(5), KeySchedule.NextChange(keys, T0 + TimeSpan.FromDays(3)));
        Assert.Equal(DateTimeOffset.MaxValue, KeySchedule.NextChange(keys, T0 + TimeSpan.FromDays(5)));
    }

    [Fact]
    public void IsLive_RetirementDate_LiveUntilThenNotAfter()
    {
        Assert.True(KeySchedule.IsLive(null, T0));
        Assert.True(KeySchedule.IsLive(T0 + TimeSpan.FromTicks(1), T0));
        Assert.False(KeySchedule.IsLive(T0, T0));
    }

    private static SigningKey Row(string slot, DateTimeOffset? activatesAt) => new()
    {
        Slot = slot,
        KeyId = "kid",
        Algorithm = slot.Split('/')[0],
        ProtectedMaterial = "",
        CreatedAt = T0,
        ActivatesAt = activatesAt,
    };

    private static RingKey Key(string algorithm, int generation, DateTimeOffset activatesAt, DateTimeOffset? retiredAt = null) =>
        new(algorithm, generation, $"{algorithm}-{generation}", T0, activatesAt, retiredAt, null, null);
}
