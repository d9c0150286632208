using Identity.Core.Accounts;
using Identity.Core.Policies;

namespace Identity.Core.UnitTests.Policies;

public sealed class MfaRulesTests
{
    [Theory]
    [InlineData(MfaRequirement.Off, AccountRoles.Owner, false)]
    [InlineData(MfaRequirement.Off, AccountRoles.Admin, false)]
    [InlineData(MfaRequirement.Off, AccountRoles.Member, false)]
    [InlineData(MfaRequirement.Off, null, false)]
    [InlineData(MfaRequirement.Optional, AccountRoles.Owner, false)]
    [InlineData(MfaRequirement.Optional, AccountRoles.Admin, false)]
    [InlineData(MfaRequirement.Optional, AccountRoles.Member, false)]
    [InlineData(MfaRequirement.Optional, null, false)]
    [InlineData(MfaRequirement.RequiredForAdmins, AccountRoles.Owner, true)]
    [InlineData(MfaRequirement.RequiredForAdmins, AccountRoles.Admin, true)]
    [InlineData(MfaRequirement.RequiredForAdmins, AccountRoles.Member, false)]
    [InlineData(MfaRequirement.RequiredForAdmins, null, false)]
    [InlineData(MfaRequirement.RequiredForAdmins, "Admin", false)] // roles are compared exactly, as AccountRoles does
    [InlineData(MfaRequirement.RequiredForEveryone, AccountRoles.Owner, true)]
    [InlineData(MfaRequirement.RequiredForEveryone, AccountRoles.Admin, true)]
    [InlineData(MfaRequirement.RequiredForEveryone, AccountRoles.Member, true)]
    [InlineData(MfaRequirement.RequiredForEveryone, null, true)]
    public void IsRequired_RequirementAndRole_Outcome(MfaRequirement requirement, string? role, bool required)
    {
        Assert.Equal(required, MfaRules.IsRequired(new MfaPolicy { Requirement = requirement }, role));
    }

    [Fact]
    public void IsRequired_UndefinedRequirement_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MfaRules.IsRequired(new MfaPolicy { Requirement = (MfaRequirement)42 }, null));
    }
}
